"""The one definition of Scenario's ControlNet request rules.

Both the client (before it spends anything) and the emulator (as the server's
400 answers) validate through :func:`validate_body`, so the two can never
disagree about a field name, a range or a modality rule.

Wire names (camelCase) are what Scenario receives; each field also carries the
snake_case parameter name used by the Python API and the ComfyUI widgets, so
error messages can name both.

The client runs in ``strict`` mode: canonical spellings only, exactly one
control-image field, no free-form URLs. The emulator runs non-strict and first
normalises what real clients are known to send (aliases, ``imageUrl``, a seed as
a numeric string, a scheduler without its ``Scheduler`` suffix).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ValidationError, register_param_names

# --------------------------------------------------------------------------- endpoints

TXT2IMG = "controlnet"
IMG2IMG = "controlnet-img2img"
ENDPOINTS = (TXT2IMG, IMG2IMG)


def endpoint_path(endpoint: str) -> str:
    """``/generate/<endpoint>`` relative to the ``/v1`` base."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")
    return f"/generate/{endpoint}"


# --------------------------------------------------------------------------- model families

FLUX = "flux"
SDXL = "sd-xl"
SD15 = "sd-1_5"
CUSTOM = "custom"
FAMILIES = (FLUX, SDXL, SD15, CUSTOM)


def family_of(model_type: str | None, model_id: str = "", custom: bool = False) -> str:
    """Map a model record's ``type`` (and id) to a rule family.

    ``custom: true`` models only run on ``/generate/custom/{id}``; they get the
    ``custom`` family whatever their type says.
    """
    t = (model_type or "").lower()
    if custom or t == CUSTOM:
        return CUSTOM
    if t.startswith("flux"):
        return FLUX
    if t.startswith("sd-xl"):
        return SDXL
    if t.startswith("sd-1_5"):
        return SD15
    if model_id.lower().startswith("flux."):
        return FLUX
    return CUSTOM


# --------------------------------------------------------------------------- modalities

FLUX_MODALITIES = ("canny", "tile", "depth", "blur", "pose", "gray", "low-quality", "sketch")
SDXL_MODALITIES = ("canny", "pose", "depth", "seg", "illusion", "scribble")
SD15_MODALITIES = ("canny", "pose", "depth", "lines", "seg", "scribble", "lineart", "normal-map", "illusion")

MODALITIES_BY_FAMILY: dict[str, tuple[str, ...]] = {
    FLUX: FLUX_MODALITIES,
    SDXL: SDXL_MODALITIES,
    SD15: SD15_MODALITIES,
}
PRESETS_BY_FAMILY: dict[str, tuple[str, ...]] = {
    FLUX: (),
    SDXL: ("character", "landscape"),
    SD15: ("character", "landscape", "city", "interior"),
}
MAX_MODALITIES = {FLUX: 1, SDXL: 3, SD15: 3}

# Names seen in Scenario's prose that the server maps to canonical ones.
MODALITY_ALIASES = {"openpose": "pose", "normal": "normal-map"}


def _ordered_union(*groups: tuple[str, ...]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for name in group:
            seen.setdefault(name, None)
    return tuple(seen)


# Every name the API accepts in some family, common ones first (the node combo).
ALL_MODALITIES = _ordered_union(
    ("canny", "pose", "depth"),
    FLUX_MODALITIES,
    SD15_MODALITIES,
    SDXL_MODALITIES,
)
ALL_PRESETS = _ordered_union(*PRESETS_BY_FAMILY.values())
ALL_MODALITY_NAMES = ALL_MODALITIES + ALL_PRESETS

WEIGHT_MIN_EXCLUSIVE = 0.0
WEIGHT_MAX = 1.0

_ITEM_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(?::\s*([^\s,]+)\s*)?$")


@dataclass(frozen=True)
class ModalityItem:
    name: str
    weight: float | None = None

    def __str__(self) -> str:
        return self.name if self.weight is None else f"{self.name}:{_fmt_weight(self.weight)}"


def _fmt_weight(w: float) -> str:
    text = f"{w:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def parse_modality(value: Any, *, strict: bool = True) -> list[ModalityItem]:
    """Parse ``name[:weight](,name[:weight])*`` without applying family rules."""
    field = "modality"
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            field,
            value,
            "a non-empty string such as 'canny' or 'depth:0.5,pose:1.0'",
        )
    items: list[ModalityItem] = []
    for raw in value.split(","):
        m = _ITEM_RE.match(raw)
        if not m:
            raise ValidationError(
                field, value, "comma-separated items of the form name or name:weight, e.g. 'depth:0.5,pose:1.0'"
            )
        name = m.group(1).lower()
        if not strict:
            name = MODALITY_ALIASES.get(name, name)
        weight: float | None = None
        if m.group(2) is not None:
            try:
                weight = float(m.group(2))
            except ValueError:
                raise ValidationError(field, value, f"a numeric weight after '{name}:' in (0, 1]") from None
            if not math.isfinite(weight) or not (WEIGHT_MIN_EXCLUSIVE < weight <= WEIGHT_MAX):
                raise ValidationError(field, value, f"weight of '{name}' in (0, 1], got {m.group(2)}")
        items.append(ModalityItem(name, weight))
    names = [i.name for i in items]
    if len(set(names)) != len(names):
        raise ValidationError(field, value, "each modality name at most once")
    return items


def validate_modality(value: Any, family: str, *, strict: bool = True) -> str:
    """Check a modality string against a family's rules; return its canonical form."""
    items = parse_modality(value, strict=strict)
    field = "modality"
    if family == CUSTOM:
        raise ValidationError(
            "modelId",
            None,
            "a Flux, SDXL or SD 1.5 model: custom models do not run on the ControlNet endpoints",
        )
    allowed = MODALITIES_BY_FAMILY[family]
    presets = PRESETS_BY_FAMILY[family]
    label = family_label(family)
    for item in items:
        if strict and item.name in MODALITY_ALIASES:
            raise ValidationError(
                field, value, f"the canonical name '{MODALITY_ALIASES[item.name]}' instead of '{item.name}'"
            )
        if item.name not in allowed and item.name not in presets:
            names = ", ".join(allowed + presets)
            raise ValidationError(field, value, f"for {label} models one of: {names} ('{item.name}' is not)")
    preset_items = [i for i in items if i.name in presets]
    if preset_items and len(items) > 1:
        raise ValidationError(field, value, f"either one preset ({', '.join(presets)}) alone, or modalities")
    limit = MAX_MODALITIES[family]
    if len(items) > limit:
        what = "exactly one modality" if limit == 1 else f"at most {limit} modalities"
        raise ValidationError(field, value, f"{what} for {label} models, got {len(items)}")
    return ",".join(str(i) for i in items)


def family_label(family: str) -> str:
    return {FLUX: "Flux", SDXL: "SDXL", SD15: "SD 1.5", CUSTOM: "custom"}.get(family, family)


# --------------------------------------------------------------------------- ids

ASSET_ID_RE = re.compile(r"^asset_[A-Za-z0-9_-]{1,128}$")
JOB_ID_RE = re.compile(r"^job_[A-Za-z0-9_-]{1,128}$")
MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PROJECT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

_ID_RULES = {
    "assetId": (ASSET_ID_RE, "an asset id like 'asset_GTrL3mq4SXWyMxkOHRxlpw'"),
    "jobId": (JOB_ID_RE, "a job id like 'job_abc123' (letters, digits, '_' and '-')"),
    "modelId": (MODEL_ID_RE, "a model id like 'flux.1-dev' (letters, digits, '.', '_' and '-')"),
    "projectId": (PROJECT_ID_RE, "a project id (letters, digits, '_' and '-')"),
}


def check_id(kind: str, value: Any, field: str | None = None) -> str:
    """Validate an id that will be placed in a URL path or query (no injection)."""
    pattern, allowed = _ID_RULES[kind]
    if not isinstance(value, str) or not pattern.match(value.strip()) or ".." in value:
        raise ValidationError(field or kind, value, allowed)
    return value.strip()


# --------------------------------------------------------------------------- schedulers

SCHEDULERS = (
    "DDIMScheduler",
    "DDPMScheduler",
    "DEISMultistepScheduler",
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "EulerAncestralDiscreteScheduler",
    "EulerDiscreteScheduler",
    "HeunDiscreteScheduler",
    "KDPM2AncestralDiscreteScheduler",
    "KDPM2DiscreteScheduler",
    "LCMScheduler",
    "LMSDiscreteScheduler",
    "PNDMScheduler",
    "TCDScheduler",
    "UniPCMultistepScheduler",
)


def canonical_scheduler(value: str) -> str | None:
    """Spec spelling of a scheduler name given with or without the suffix."""
    if not isinstance(value, str):
        return None
    v = value.strip()
    if v in SCHEDULERS:
        return v
    if v + "Scheduler" in SCHEDULERS:
        return v + "Scheduler"
    return None


# --------------------------------------------------------------------------- numeric fields


@dataclass(frozen=True)
class NumberRule:
    field: str  # wire name
    param: str  # python / widget name
    integer: bool
    lo: float
    hi: float
    lo_open: bool = False
    multiple_of: int | None = None

    def describe(self, lo: float | None = None, hi: float | None = None) -> str:
        lo = self.lo if lo is None else lo
        hi = self.hi if hi is None else hi
        kind = "an integer" if self.integer else "a number"
        left = "(" if self.lo_open else "["
        rng = f"in {left}{_num(lo)}, {_num(hi)}]" if not self.integer else f"from {_num(lo)} to {_num(hi)}"
        mult = f", a multiple of {self.multiple_of}" if self.multiple_of else ""
        return f"{kind} {rng}{mult}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


SEED_MAX = 2**31 - 1

RULES: dict[str, NumberRule] = {
    r.field: r
    for r in (
        NumberRule("numSamples", "num_samples", True, 1, 128),
        NumberRule("guidance", "guidance", False, 0, 20),
        NumberRule("numInferenceSteps", "num_inference_steps", True, 1, 150),
        NumberRule("width", "width", True, 64, 2048, multiple_of=8),
        NumberRule("height", "height", True, 64, 2048, multiple_of=8),
        NumberRule("strength", "strength", False, 0.01, 1.0),
        NumberRule("seed", "seed", True, 0, SEED_MAX),
        NumberRule("controlStart", "control_start", False, 0.0, 1.0),
        NumberRule("controlEnd", "control_end", False, 0.0, 1.0),
        NumberRule("negativePromptStrength", "negative_prompt_strength", False, 0.0, 10.0),
    )
}

# Family-specific tightening of the generic ranges above.
FAMILY_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    FLUX: {"guidance": (0, 10)},
    SDXL: {"width": (512, 2048), "height": (512, 2048)},
    SD15: {"width": (64, 1024), "height": (64, 1024)},
    # Only the size/guidance helpers (fit_size, size_range, the web route) read
    # this entry: validate_body refuses the custom family before any number.
    CUSTOM: {"width": (128, 2048), "height": (128, 2048), "guidance": (0, 10)},
}
SIZE_MULTIPLE = {CUSTOM: 16}

# Values sent when the caller gives none (open question 5: send everything explicitly).
DEFAULT_GUIDANCE = {FLUX: 3.5, SDXL: 6.0, SD15: 7.5}
DEFAULTS = {"numSamples": 1, "numInferenceSteps": 30, "width": 512, "height": 512}
DEFAULT_STRENGTH = 0.75
FLUX_ONLY_FIELDS = ("controlStart", "controlEnd", "negativePromptStrength")
SD_ONLY_FIELDS = ("scheduler",)

PARAM_OF = {r.field: r.param for r in RULES.values()} | {
    "prompt": "prompt",
    "modelId": "model_id",
    "modality": "modality",
    "controlImage": "control_image",
    "controlImageId": "control_image_id",
    "image": "image",
    "negativePrompt": "negative_prompt",
    "scheduler": "scheduler",
    "disableModalityDetection": "disable_modality_detection",
}
register_param_names(PARAM_OF)


def size_range(field: str, family: str) -> tuple[int, int]:
    lo, hi = FAMILY_RANGES.get(family, {}).get(field, (RULES[field].lo, RULES[field].hi))
    return int(lo), int(hi)


def snap_size(value: float, lo: int, hi: int, step: int = 8) -> int:
    """The multiple of ``step`` nearest to ``value``, kept within [lo, hi] (lo and hi are multiples of it)."""
    return int(min(hi, max(lo, step * round(value / step))))


def size_multiple(family: str) -> int:
    """What width and height must be a multiple of for ``family`` (16 on the custom path, else 8)."""
    return SIZE_MULTIPLE.get(family, 8)


def fit_size(width: int, height: int, family: str = FLUX) -> tuple[int, int]:
    """Fit an arbitrary size to the family's rules, keeping the aspect ratio.

    Scales down (or up) so both sides are within range, then rounds each side to
    the nearest multiple of 8 (16 for the custom family) inside the range. Used to derive width/height from
    a control image.
    """
    if width <= 0 or height <= 0:
        raise ValueError("width and height must be positive")
    wlo, whi = size_range("width", family)
    hlo, hhi = size_range("height", family)
    scale = min(1.0, whi / width, hhi / height)
    scale = max(scale, wlo / width, hlo / height)
    step = size_multiple(family)
    return snap_size(width * scale, wlo, whi, step), snap_size(height * scale, hlo, hhi, step)


def check_number(
    field: str,
    value: Any,
    family: str | None = None,
    *,
    strict: bool = True,
    rules: Mapping[str, NumberRule] | None = None,
) -> int | float:
    """Check one numeric field; return it as int or float.

    ``rules`` selects the rule table (the legacy :data:`RULES` by default, or
    :data:`CUSTOM_CONTROLNET_RULES` for the custom path).
    """
    rule = (RULES if rules is None else rules)[field]
    lo, hi = rule.lo, rule.hi
    if family in FAMILY_RANGES and field in FAMILY_RANGES[family]:
        lo, hi = FAMILY_RANGES[family][field]
    where = f" for {family_label(family)} models" if family in FAMILY_RANGES and field in FAMILY_RANGES[family] else ""
    allowed = rule.describe(lo, hi) + where
    v = value
    if not strict and isinstance(v, str):
        try:
            v = int(v) if rule.integer else float(v)
        except ValueError:
            raise ValidationError(field, value, allowed, param=rule.param) from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValidationError(field, value, allowed, param=rule.param)
    if rule.integer:
        if isinstance(v, float):
            if not v.is_integer():
                raise ValidationError(field, value, allowed, param=rule.param)
            v = int(v)
    else:
        if not math.isfinite(v):
            raise ValidationError(field, value, allowed, param=rule.param)
        v = float(v)
    if v < lo or v > hi or (rule.lo_open and v <= lo):
        raise ValidationError(field, value, allowed, param=rule.param)
    if rule.multiple_of and int(v) % rule.multiple_of:
        raise ValidationError(field, value, allowed, param=rule.param)
    return v


# --------------------------------------------------------------------------- image fields

DATA_URL_RE = re.compile(r"^data:image/(png|jpeg|jpg|webp);base64,[A-Za-z0-9+/=\s]+$", re.S)


def is_data_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("data:image/") and bool(DATA_URL_RE.match(value[:64] + "A"))


def _check_image_ref(field: str, value: Any, *, allow_asset: bool, strict: bool) -> str:
    allowed = "a PNG/JPEG/WebP data URL" + (" or an asset id like 'asset_…'" if allow_asset else "")
    if not isinstance(value, str) or not value:
        raise ValidationError(field, value, allowed)
    if is_data_url(value):
        return value
    if allow_asset and ASSET_ID_RE.match(value):
        return value
    if not strict and value.startswith(("http://", "https://")):
        return value  # open question 3: the server treats URLs as opaque
    raise ValidationError(field, value, allowed)


# --------------------------------------------------------------------------- request body

KNOWN_FIELDS = (
    "prompt",
    "modelId",
    "modality",
    "controlImage",
    "controlImageId",
    "image",
    "strength",
    "negativePrompt",
    "negativePromptStrength",
    "numSamples",
    "guidance",
    "numInferenceSteps",
    "width",
    "height",
    "scheduler",
    "seed",
    "controlStart",
    "controlEnd",
    "disableModalityDetection",
)


def normalise_lenient(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the server does before validating: aliases and unknown keys.

    - ``imageUrl`` is an alias of ``image``; ``imageId`` of ``image`` on img2img
      (callers handle the txt2img map fallback themselves);
    - unknown keys (``type``, a body ``dryRun``…) are dropped;
    - scheduler names without the ``Scheduler`` suffix are accepted.
    """
    out = {k: v for k, v in body.items() if k in KNOWN_FIELDS}
    if "image" not in out:
        for alias in ("imageUrl", "imageId"):
            if isinstance(body.get(alias), str):
                out["image"] = body[alias]
                break
    sched = out.get("scheduler")
    if isinstance(sched, str) and canonical_scheduler(sched):
        out["scheduler"] = canonical_scheduler(sched)
    return out


def validate_body(
    endpoint: str,
    body: Mapping[str, Any],
    family: str,
    *,
    strict: bool = True,
) -> dict[str, Any]:
    """Validate a ControlNet request body for ``endpoint`` and a model ``family``.

    Returns the normalised body (canonical modality, numbers typed). Raises
    :class:`ValidationError` naming the first offending field and what it allows.
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}")
    b: dict[str, Any] = dict(body) if strict else normalise_lenient(body)
    if strict:
        unknown = sorted(set(b) - set(KNOWN_FIELDS))
        if unknown:
            raise ValidationError(unknown[0], b[unknown[0]], "one of the documented fields: " + ", ".join(KNOWN_FIELDS))

    # required text fields
    prompt = b.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationError("prompt", prompt, "a non-empty text prompt")
    model_id = b.get("modelId")
    if model_id is None:
        raise ValidationError("modelId", None, "a model id like 'flux.1-dev'")
    b["modelId"] = check_id("modelId", model_id)
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}")
    if family == CUSTOM:
        raise ValidationError(
            "modelId",
            model_id,
            "a Flux, SDXL or SD 1.5 model: custom models do not run on the ControlNet endpoints",
        )
    if "modality" not in b:
        raise ValidationError("modality", None, "a modality such as 'canny' or 'depth:0.5,pose:1.0'")
    b["modality"] = validate_modality(b["modality"], family, strict=strict)

    # control map: exactly one of controlImage / controlImageId (strict)
    has_map = "controlImage" in b and b["controlImage"] is not None
    has_map_id = "controlImageId" in b and b["controlImageId"] is not None
    if strict and has_map and has_map_id:
        raise ValidationError(
            "controlImage", "(both given)", "exactly one of controlImage (data URL) or controlImageId (asset id)"
        )
    if has_map:
        b["controlImage"] = _check_image_ref("controlImage", b["controlImage"], allow_asset=not strict, strict=strict)
        if not strict:
            b.pop("controlImageId", None)
    elif has_map_id:
        b["controlImageId"] = _check_image_ref("controlImageId", b["controlImageId"], allow_asset=True, strict=True)
        if strict and not ASSET_ID_RE.match(b["controlImageId"]):
            raise ValidationError("controlImageId", b["controlImageId"], "an asset id like 'asset_…'")
    elif not strict and endpoint == TXT2IMG and isinstance(b.get("image"), str):
        # open question 2: some clients send the map as image / imageId on txt2img
        b["controlImage"] = _check_image_ref("image", b.pop("image"), allow_asset=True, strict=False)
    else:
        raise ValidationError(
            "controlImage", None, "exactly one of controlImage (data URL) or controlImageId (asset id)"
        )

    # init image
    if endpoint == IMG2IMG:
        if b.get("image") is None:
            raise ValidationError("image", None, "the init image as a data URL or an asset id (img2img needs one)")
        b["image"] = _check_image_ref("image", b["image"], allow_asset=True, strict=strict)
        if b.get("strength") is not None:
            b["strength"] = check_number("strength", b["strength"], family, strict=strict)
    else:
        if strict and b.get("image") is not None:
            raise ValidationError("image", "(given)", "no init image on txt2img; use the controlnet-img2img endpoint")
        if strict and b.get("strength") is not None:
            raise ValidationError("strength", b["strength"], "strength only with an init image (img2img)")
        if not strict:
            b.pop("image", None)
            b.pop("strength", None)

    # numbers
    for field in (
        "numSamples",
        "guidance",
        "numInferenceSteps",
        "width",
        "height",
        "seed",
        "controlStart",
        "controlEnd",
        "negativePromptStrength",
    ):
        if b.get(field) is not None:
            b[field] = check_number(field, b[field], family, strict=strict)
        else:
            b.pop(field, None)
    if "controlStart" in b and "controlEnd" in b and b["controlStart"] >= b["controlEnd"]:
        raise ValidationError(
            "controlStart", b["controlStart"], f"a value below controlEnd ({b['controlEnd']})", param="control_start"
        )

    # family-specific fields
    if family != FLUX:
        for field in FLUX_ONLY_FIELDS:
            if field in b:
                if strict:
                    raise ValidationError(field, b[field], f"only on Flux models, not {family_label(family)}")
                b.pop(field)
    if b.get("scheduler") is not None:
        if family == FLUX:
            if strict:
                raise ValidationError(
                    "scheduler", b["scheduler"], "no scheduler on Flux models (Stable Diffusion only)"
                )
            b.pop("scheduler")
        else:
            canon = b["scheduler"] if b["scheduler"] in SCHEDULERS else None
            if canon is None:
                raise ValidationError("scheduler", b["scheduler"], "one of: " + ", ".join(SCHEDULERS))
    else:
        b.pop("scheduler", None)

    if b.get("negativePrompt") is not None and not isinstance(b["negativePrompt"], str):
        raise ValidationError("negativePrompt", b["negativePrompt"], "a text string")
    if b.get("disableModalityDetection") is not None and not isinstance(b["disableModalityDetection"], bool):
        raise ValidationError("disableModalityDetection", b["disableModalityDetection"], "true or false")
    return b


# --------------------------------------------------------------------------- the custom-model path
#
# By 2026 Scenario serves Flux.1-dev as the custom model ``model_bfl-flux-1-dev``
# (reference §9.3): ControlNet runs on ``POST /generate/custom/{modelId}`` with the
# model's own ``inputs`` as the body. Those names and ranges differ from the legacy
# ControlNet endpoints (``numOutputs`` for ``numSamples``, ``controlModality`` plus
# ``controlStrength`` for ``modality``, asset ids only), so they get a definition
# of their own here instead of being mixed into :data:`RULES`.

CUSTOM_ENDPOINT = "custom"
CUSTOM_CONTROLNET_CAPABILITY = "controlnet"
CUSTOM_IMG2IMG_CAPABILITY = "img2img"
CUSTOM_MODALITIES = FLUX_MODALITIES
CUSTOM_MAX_MODALITIES = 1
CUSTOM_PROMPT_MAX = 2048

CUSTOM_CONTROLNET_RULES: dict[str, NumberRule] = {
    r.field: r
    for r in (
        NumberRule("controlStrength", "modality_strength", False, 0.0, 1.0),
        NumberRule("controlStart", "control_start", False, 0.0, 1.0),
        NumberRule("controlEnd", "control_end", False, 0.0, 1.0),
        NumberRule("strength", "strength", False, 0.01, 1.0),
        NumberRule("numOutputs", "num_samples", True, 1, 4),
        NumberRule("numInferenceSteps", "num_inference_steps", True, 1, 50),
        NumberRule("width", "width", True, 128, 2048, multiple_of=16),
        NumberRule("height", "height", True, 128, 2048, multiple_of=16),
        NumberRule("guidance", "guidance", False, 0, 10),
        NumberRule("seed", "seed", True, 0, SEED_MAX),
    )
}
CUSTOM_KNOWN_FIELDS = ("prompt", "controlImage", "controlModality", "image") + tuple(CUSTOM_CONTROLNET_RULES)
# Values sent when the caller gives none (the model's documented defaults).
CUSTOM_DEFAULTS = {"numOutputs": 1, "numInferenceSteps": 28, "width": 1104, "height": 832, "guidance": 3.5}
CUSTOM_DEFAULT_STRENGTH = 0.8
PARAM_OF_WIRE = {
    "scheduler": "scheduler",
    "negative_prompt": "negativePrompt",
    "negative_prompt_strength": "negativePromptStrength",
}
CUSTOM_PARAM_OF = {r.field: r.param for r in CUSTOM_CONTROLNET_RULES.values()} | {
    "prompt": "prompt",
    "controlImage": "control_image_id",
    "controlModality": "modality",
    "image": "image",
}


def custom_path(model_id: str) -> str:
    """``/generate/custom/<modelId>`` relative to the ``/v1`` base (the id checked for the URL)."""
    return f"/generate/custom/{check_id('modelId', model_id)}"


def custom_modality(value: Any) -> tuple[str, float | None]:
    """Split a ``name[:weight]`` modality string into the custom path's name and strength.

    The custom path takes exactly one modality from the Flux list.
    """
    items = parse_modality(value, strict=True)
    if len(items) > CUSTOM_MAX_MODALITIES:
        raise ValidationError(
            "modality", value, f"exactly one modality for custom models, got {len(items)}", param="modality"
        )
    item = items[0]
    if item.name not in CUSTOM_MODALITIES:
        raise ValidationError(
            "modality", value, f"for custom models one of: {', '.join(CUSTOM_MODALITIES)} ('{item.name}' is not)"
        )
    return item.name, item.weight


def _check_asset(field: str, value: Any, what: str) -> str:
    if not isinstance(value, str) or not ASSET_ID_RE.match(value.strip()):
        raise ValidationError(
            field,
            value,
            f"{what} as an asset id like 'asset_…' (upload images first)",
            param=CUSTOM_PARAM_OF.get(field),
        )
    return value.strip()


def check_custom_capabilities(capabilities: Any, model_id: Any = None, *, img2img: bool = False) -> None:
    """Refuse a custom model that cannot do ControlNet (or, with an init image, img2img)."""
    caps = {str(c).lower() for c in (capabilities or ())}
    if CUSTOM_CONTROLNET_CAPABILITY not in caps:
        raise ValidationError(
            "modelId",
            model_id,
            "a model with the 'controlnet' capability: this model can't do ControlNet "
            f"(its capabilities: {', '.join(sorted(caps)) or 'none'})",
            param="model_id",
        )
    if img2img and CUSTOM_IMG2IMG_CAPABILITY not in caps:
        raise ValidationError(
            "image", "(given)", "no init image: this model can't do img2img (it lacks the 'img2img' capability)"
        )


def validate_custom_body(
    body: Mapping[str, Any], capabilities: Any, *, strict: bool = True, model_id: Any = None
) -> dict[str, Any]:
    """Validate a ``/generate/custom/{modelId}`` ControlNet body (reference §9.3).

    ``capabilities`` is the model record's list: ``controlnet`` is required,
    ``img2img`` too when an init image is given. Strict (the client): only the
    documented fields, ``controlModality`` given, ``strength`` only with an
    init image. Lenient (the emulator): unknown keys dropped, the modality
    defaults to ``canny``, aliases accepted, numeric strings accepted.
    Returns the normalised body; raises :class:`ValidationError` naming the
    first offending field and what it allows.
    """
    b: dict[str, Any] = dict(body) if strict else {k: v for k, v in body.items() if k in CUSTOM_KNOWN_FIELDS}
    if strict:
        unknown = sorted(set(b) - set(CUSTOM_KNOWN_FIELDS))
        if unknown:
            raise ValidationError(
                unknown[0], b[unknown[0]], "one of the custom ControlNet fields: " + ", ".join(CUSTOM_KNOWN_FIELDS)
            )
    check_custom_capabilities(capabilities, model_id, img2img=b.get("image") is not None)

    prompt = b.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationError("prompt", prompt, "a non-empty text prompt")
    if len(prompt) > CUSTOM_PROMPT_MAX:
        raise ValidationError("prompt", f"<{len(prompt)} chars>", f"at most {CUSTOM_PROMPT_MAX} characters")

    b["controlImage"] = _check_asset("controlImage", b.get("controlImage"), "the control image (required)")
    modality = b.get("controlModality")
    if modality is None and not strict:
        modality = "canny"
    if isinstance(modality, str) and not strict:
        modality = MODALITY_ALIASES.get(modality.strip().lower(), modality.strip().lower())
    if modality not in CUSTOM_MODALITIES:
        raise ValidationError("controlModality", modality, "one of: " + ", ".join(CUSTOM_MODALITIES), param="modality")
    b["controlModality"] = modality

    if b.get("image") is not None:
        b["image"] = _check_asset("image", b["image"], "the init image")
    else:
        b.pop("image", None)
        if b.get("strength") is not None:
            if strict:
                raise ValidationError("strength", b["strength"], "strength only with an init image (image)")
            b.pop("strength")

    for field in CUSTOM_CONTROLNET_RULES:
        if b.get(field) is not None:
            b[field] = check_number(field, b[field], strict=strict, rules=CUSTOM_CONTROLNET_RULES)
        else:
            b.pop(field, None)
    if "controlStart" in b and "controlEnd" in b and b["controlStart"] >= b["controlEnd"]:
        raise ValidationError(
            "controlStart", b["controlStart"], f"a value below controlEnd ({b['controlEnd']})", param="control_start"
        )
    return b
