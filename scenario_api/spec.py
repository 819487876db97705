"""The one definition of Scenario's ControlNet request rules.

Entry points, each written once:

* :func:`check_request` - a request against a model record (its family, custom
  flag and capabilities): the strict wire body, or a :class:`ValidationError`
  naming the field and the allowed values. The client (before it spends
  anything) and the generate nodes (on drafts, before any upload) call it.
* :func:`precheck_request` - the model-independent part: what no model family
  accepts, refused before even the free model lookup.
* :func:`check_field` - one field's model-independent rule; the widget checks
  (``VALIDATE_INPUTS``) are built on it, so a widget and the client give the
  same message for the same bad value.
* :func:`validate_body` - the rule checker of the legacy wire shape. The
  emulator answers 400 with it too, after :func:`normalise_lenient` has
  rewritten what real clients are known to send (aliases, ``imageUrl``, a seed
  as a numeric string, a scheduler without its ``Scheduler`` suffix, fields the
  server ignores). The two callers share every rule; the only table that
  differs is which image references a field takes (:data:`CLIENT_IMAGE_REFS`,
  :data:`SERVER_IMAGE_REFS`).
* :func:`check_custom_request` - custom models (``/generate/custom/{id}``):
  the request mapped by meaning onto the inputs the model declares and checked
  against them, with :mod:`scenario_api.declared_inputs` (which the emulator
  uses too, in its server mode, to answer with Scenario's own texts).

Wire names (camelCase) are what Scenario receives; each field also carries the
snake_case parameter name used by the Python API and the ComfyUI widgets
(:data:`WIRE_TO_PARAM`), so error messages can name both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import declared_inputs
from .errors import ImageDecodeError, ValidationError, register_param_names
from .imaging import from_data_url

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
CONTROLNET_FAMILIES = (FLUX, SDXL, SD15)  # the families of the /generate/controlnet* endpoints


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


def alias_modality(value: Any) -> Any:
    """The server's reading of a modality string: alias names (``openpose``) become canonical ones.

    Anything that does not parse is returned unchanged, so the rule checker
    reports it exactly as it would report it to a strict caller.
    """
    if not isinstance(value, str):
        return value
    items = []
    for raw in value.split(","):
        m = _ITEM_RE.match(raw)
        if not m:
            return value
        name = MODALITY_ALIASES.get(m.group(1).lower(), m.group(1).lower())
        items.append(name if m.group(2) is None else f"{name}:{m.group(2)}")
    return ",".join(items)


def validate_modality(value: Any, family: str) -> str:
    """Check a modality string against a family's rules; return its canonical form."""
    items = parse_modality(value, strict=True)
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
        if item.name in MODALITY_ALIASES:
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


def check_modality_for_some_family(value: Any) -> str:
    """The model-independent modality rule: the grammar, known names, and a combination some family accepts.

    Returns the value stripped. Raises :class:`ValidationError` on ``modality``.
    """
    items = parse_modality(value, strict=True)
    unknown = [i.name for i in items if i.name not in ALL_MODALITY_NAMES]
    if unknown:
        raise ValidationError("modality", value, "names among: " + ", ".join(ALL_MODALITY_NAMES))
    reasons = []
    for family in CONTROLNET_FAMILIES:
        try:
            validate_modality(value, family)
            return str(value).strip()
        except ValidationError as exc:
            reasons.append(f"{family_label(family)}: {exc.allowed}")
    raise ValidationError("modality", value, "a combination some model family accepts (" + "; ".join(reasons) + ")")


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


def id_shape(kind: str) -> str:
    """What an id of ``kind`` (``assetId``, ``jobId``, ``modelId``, ``projectId``) looks like, in words."""
    return _ID_RULES[kind][1]


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
        mult = f" in steps of {self.multiple_of} (a multiple of {self.multiple_of})" if self.multiple_of else ""
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

# Values sent when the caller gives none. Every value is sent explicitly: Scenario's own
# documents disagree on its defaults (numSamples 4 or 1, strength 0.75 or 0.8, guidance).
DEFAULT_GUIDANCE = {FLUX: 3.5, SDXL: 6.0, SD15: 7.5}
DEFAULTS = {"numSamples": 1, "numInferenceSteps": 30, "width": 512, "height": 512}
DEFAULT_STRENGTH = 0.75
FLUX_ONLY_FIELDS = ("controlStart", "controlEnd", "negativePromptStrength")
SD_ONLY_FIELDS = ("scheduler",)

# Wire field (camelCase) -> Python / widget parameter (snake_case), for error messages.
WIRE_TO_PARAM = {r.field: r.param for r in RULES.values()} | {
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
register_param_names(WIRE_TO_PARAM)
# Python / widget parameter -> wire field: the same table read the other way.
PARAM_TO_WIRE = {param: field for field, param in WIRE_TO_PARAM.items()}


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
    rules: Mapping[str, NumberRule] | None = None,
) -> int | float:
    """Check one numeric field; return it as int or float.

    ``rules`` selects the rule table (the legacy :data:`RULES` by default). Without a
    ``family`` the generic range applies: what holds for some family.
    """
    rule = (RULES if rules is None else rules)[field]
    lo, hi = rule.lo, rule.hi
    if family in FAMILY_RANGES and field in FAMILY_RANGES[family]:
        lo, hi = FAMILY_RANGES[family][field]
    where = f" for {family_label(family)} models" if family in FAMILY_RANGES and field in FAMILY_RANGES[family] else ""
    allowed = rule.describe(lo, hi) + where
    v = value
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

# Stands in for an image that is not uploaded yet, wherever a request is checked
# before any upload (the generate nodes' drafts, the custom path's data URLs).
PLACEHOLDER_ASSET_ID = "asset_placeholder-for-validation"

# What each image field takes: "data" (a data URL), "asset" (an asset id), "url"
# (an http(s) URL, opaque to the server). The client sends only what the API
# documents; the server (the emulator) also takes what real clients are seen to send.
CLIENT_IMAGE_REFS: dict[str, tuple[str, ...]] = {
    "controlImage": ("data",),
    "controlImageId": ("asset",),
    "image": ("data", "asset"),
}
SERVER_IMAGE_REFS: dict[str, tuple[str, ...]] = {
    "controlImage": ("data", "asset", "url"),
    "controlImageId": ("data", "asset"),
    "image": ("data", "asset", "url"),
}
_IMAGE_REF_TEXT = {"data": "a PNG/JPEG/WebP data URL", "asset": "an asset id like 'asset_\u2026'"}


def is_data_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("data:image/") and bool(DATA_URL_RE.match(value[:64] + "A"))


def _check_image_ref(field: str, value: Any, image_refs: Mapping[str, tuple[str, ...]]) -> str:
    kinds = image_refs[field]
    allowed = " or ".join(_IMAGE_REF_TEXT[k] for k in kinds if k in _IMAGE_REF_TEXT)
    if not isinstance(value, str) or not value:
        raise ValidationError(field, value, allowed)
    if "data" in kinds and is_data_url(value):
        return value
    if "asset" in kinds and ASSET_ID_RE.match(value):
        return value
    if "url" in kinds and value.startswith(("http://", "https://")):
        return value  # the server never fetches it: the job runs as if no map had been given
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
# Numbers checked in this order (strength is checked with the init image).
_NUMBER_FIELDS = (
    "numSamples",
    "guidance",
    "numInferenceSteps",
    "width",
    "height",
    "seed",
    "controlStart",
    "controlEnd",
    "negativePromptStrength",
)
_EXACTLY_ONE_MAP = "exactly one of controlImage (data URL) or controlImageId (asset id)"


def _numbers_from_text(b: dict[str, Any], rules: Mapping[str, NumberRule]) -> None:
    """Numeric strings (``"42"``) become numbers; anything else is left for the rule checker to name."""
    for field, rule in rules.items():
        value = b.get(field)
        if isinstance(value, str):
            try:
                b[field] = int(value) if rule.integer else float(value)
            except ValueError:
                pass


def normalise_lenient(body: Mapping[str, Any], endpoint: str = TXT2IMG, family: str = FLUX) -> dict[str, Any]:
    """What the server does to a legacy ControlNet body before :func:`validate_body` checks it.

    - unknown keys (``type``, a body ``dryRun``...) are dropped;
    - ``imageUrl`` and ``imageId`` are aliases of ``image``; on txt2img, a map
      sent as ``image`` (with no control image) becomes ``controlImage``;
    - ``controlImageId`` is ignored when ``controlImage`` is given;
    - the init image and ``strength`` are ignored on txt2img, the Flux-only
      fields on other families, ``scheduler`` on Flux;
    - modality aliases (``openpose``), scheduler names without the
      ``Scheduler`` suffix and numbers sent as strings are accepted.

    Never raises: what it cannot read is left for the rule checker to report.
    """
    b = {k: v for k, v in body.items() if k in KNOWN_FIELDS}
    if "image" not in b:
        for alias in ("imageUrl", "imageId"):
            if isinstance(body.get(alias), str):
                b["image"] = body[alias]
                break
    if b.get("controlImage") is not None:
        b.pop("controlImageId", None)
    elif b.get("controlImageId") is None:
        b.pop("controlImageId", None)
        if endpoint == TXT2IMG and isinstance(b.get("image"), str):
            b["controlImage"] = b.pop("image")
    if endpoint != IMG2IMG:
        b.pop("image", None)
        b.pop("strength", None)
    if family != FLUX:
        for field in FLUX_ONLY_FIELDS:
            b.pop(field, None)
    elif "scheduler" in b:
        b.pop("scheduler")
    sched = b.get("scheduler")
    if isinstance(sched, str) and canonical_scheduler(sched):
        b["scheduler"] = canonical_scheduler(sched)
    if "modality" in b:
        b["modality"] = alias_modality(b["modality"])
    _numbers_from_text(b, RULES)
    return b


def _refuse_unknown(b: Mapping[str, Any], known: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(b) - set(known))
    if unknown:
        raise ValidationError(unknown[0], b[unknown[0]], f"one of the {what}: " + ", ".join(known))


def check_prompt(prompt: Any, limit: int | None = None) -> str:
    """A prompt with some text (at most ``limit`` characters when given)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationError("prompt", prompt, "a non-empty text prompt")
    if limit is not None and len(prompt) > limit:
        raise ValidationError("prompt", f"<{len(prompt)} chars>", f"at most {limit} characters")
    return prompt


def check_window(start: Any, end: Any) -> None:
    """``controlStart`` below ``controlEnd`` when both are given (each already a checked number)."""
    if start is not None and end is not None and start >= end:
        raise ValidationError(
            "controlStart", start, f"a value below controlEnd (control_end = {end})", param="control_start"
        )


def _check_model(b: dict[str, Any], family: str) -> None:
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


def _check_images(endpoint: str, b: dict[str, Any], family: str, image_refs: Mapping[str, tuple[str, ...]]) -> None:
    """The control map (exactly one of the two fields) and, on img2img only, the init image and strength."""
    for field in ("controlImage", "controlImageId"):
        if b.get(field) is None:
            b.pop(field, None)
    has_map, has_map_id = "controlImage" in b, "controlImageId" in b
    if has_map and has_map_id:
        raise ValidationError("controlImage", "(both given)", _EXACTLY_ONE_MAP)
    if has_map:
        b["controlImage"] = _check_image_ref("controlImage", b["controlImage"], image_refs)
    elif has_map_id:
        b["controlImageId"] = _check_image_ref("controlImageId", b["controlImageId"], image_refs)
    else:
        raise ValidationError("controlImage", None, _EXACTLY_ONE_MAP)

    if endpoint == IMG2IMG:
        if b.get("image") is None:
            raise ValidationError("image", None, "the init image as a data URL or an asset id (img2img needs one)")
        b["image"] = _check_image_ref("image", b["image"], image_refs)
        if b.get("strength") is not None:
            b["strength"] = check_number("strength", b["strength"], family)
        return
    if b.get("image") is not None:
        raise ValidationError("image", "(given)", "no init image on txt2img; use the controlnet-img2img endpoint")
    if b.get("strength") is not None:
        raise ValidationError("strength", b["strength"], "strength only with an init image (img2img)")


def _check_family_fields(b: dict[str, Any], family: str) -> None:
    """Flux-only fields on other families, and the scheduler (Stable Diffusion only)."""
    if family != FLUX:
        for field in FLUX_ONLY_FIELDS:
            if field in b:
                raise ValidationError(field, b[field], f"only on Flux models, not {family_label(family)}")
    if b.get("scheduler") is None:
        b.pop("scheduler", None)
    elif family == FLUX:
        raise ValidationError("scheduler", b["scheduler"], "no scheduler on Flux models (Stable Diffusion only)")
    elif b["scheduler"] not in SCHEDULERS:
        raise ValidationError("scheduler", b["scheduler"], "one of: " + ", ".join(SCHEDULERS))


def validate_body(
    endpoint: str,
    body: Mapping[str, Any],
    family: str,
    *,
    image_refs: Mapping[str, tuple[str, ...]] = CLIENT_IMAGE_REFS,
) -> dict[str, Any]:
    """Check a legacy ControlNet body for ``endpoint`` and a model ``family``: the strict rules.

    Returns the body with the modality in canonical form and the numbers
    typed. Raises :class:`ValidationError` naming the first offending field
    and what it allows. ``image_refs`` says which image references each field
    takes (the emulator passes :data:`SERVER_IMAGE_REFS` after
    :func:`normalise_lenient`).
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}")
    b: dict[str, Any] = dict(body)
    _refuse_unknown(b, KNOWN_FIELDS, "documented fields")
    check_prompt(b.get("prompt"))
    _check_model(b, family)
    if "modality" not in b:
        raise ValidationError("modality", None, "a modality such as 'canny' or 'depth:0.5,pose:1.0'")
    b["modality"] = validate_modality(b["modality"], family)
    _check_images(endpoint, b, family, image_refs)
    for field in _NUMBER_FIELDS:
        if b.get(field) is not None:
            b[field] = check_number(field, b[field], family)
        else:
            b.pop(field, None)
    check_window(b.get("controlStart"), b.get("controlEnd"))
    _check_family_fields(b, family)
    if b.get("negativePrompt") is not None and not isinstance(b["negativePrompt"], str):
        raise ValidationError("negativePrompt", b["negativePrompt"], "a text string")
    if b.get("disableModalityDetection") is not None and not isinstance(b["disableModalityDetection"], bool):
        raise ValidationError("disableModalityDetection", b["disableModalityDetection"], "true or false")
    return b


# --------------------------------------------------------------------------- the custom-model path
#
# A model with ``custom: true`` runs on ``POST /generate/custom/{modelId}`` and its
# body is what the model itself declares in its record (``inputs``, ``uiConfig``):
# ``model_bfl-flux-1-dev`` takes ``controlImage`` (one asset id), ``controlModality``
# and ``controlStrength``; ``model_z-image`` a ``controlImage`` list and
# ``controlnetConditioningScale``. The rules are not written here per model: the
# one reader of those declarations is :mod:`scenario_api.declared_inputs` (types,
# ranges, steps, allowed values, lengths, required rules, LoRA types), and the
# request is mapped onto them by meaning (:func:`declared_inputs.map_request`).

CUSTOM_ENDPOINT = "custom"
CUSTOM_CONTROLNET_CAPABILITY = "controlnet"
CUSTOM_IMG2IMG_CAPABILITY = "img2img"


def custom_path(model_id: str) -> str:
    """``/generate/custom/<modelId>`` relative to the ``/v1`` base (the id checked for the URL)."""
    return f"/generate/custom/{check_id('modelId', model_id)}"


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


def declared_of(model: Any) -> declared_inputs.DeclaredModel:
    """The declarations of a custom model record (``models.Model``, or a raw record mapping)."""
    declared = getattr(model, "declared", None)
    if isinstance(declared, declared_inputs.DeclaredModel):
        return declared
    raw = getattr(model, "raw", model)
    return declared_inputs.DeclaredModel.from_record(raw if isinstance(raw, Mapping) else {})


def custom_file_inputs(model: Any) -> tuple[str, ...]:
    """The names of a custom model's file inputs that carry the request's images (control map, init image)."""
    declared = declared_of(model)
    return tuple(d.name for role in ("control_image", "image") if (d := declared.role(role)) is not None)


def custom_unpriced_inputs(model: Any) -> tuple[str, ...]:
    """What a custom-path price quote leaves out: the image inputs (Scenario prices a body without them,
    so a quote never uploads) and the init-image strength, which only goes with an init image."""
    declared = declared_of(model)
    strength = declared.role("strength")
    return custom_file_inputs(model) + ((strength.name,) if strength is not None else ())


def lora_ids(request: Any) -> list[str]:
    """The model ids a request names in ``loras`` (for the client to look their types up)."""
    return [mid for mid, _ in declared_inputs.parse_loras(getattr(request, "loras", None))]


def _pending(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("data:")


def check_custom_request(
    request: Any,
    model: Any,
    *,
    model_types: Mapping[str, str | None] | None = None,
    source_size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The ``/generate/custom/{id}`` body for ``request``, checked against the model's declared inputs.

    Images given as data URLs pass with :data:`PLACEHOLDER_ASSET_ID` standing in
    and come back as they were (a one-item list for a ``file_array`` input),
    for the caller to upload. ``model_types`` (id -> type, ``None`` = not
    found) lets LoRA types be checked and moves a composition named in
    ``loras`` to the base's single-model input. Fields the model cannot take
    are refused, naming the field, the model and its inputs.
    """
    check_custom_capabilities(model.capabilities, model.model_id, img2img=request.image is not None)
    declared = declared_of(model)
    if not declared.inputs:
        raise ValidationError(
            "modelId",
            model.model_id,
            "a custom model whose record declares its inputs (Scenario sent none for this model)",
            param="model_id",
        )
    for param, value in (
        ("scheduler", getattr(request, "scheduler", None)),
        ("negative_prompt_strength", getattr(request, "negative_prompt_strength", None)),
    ):
        if value is not None:
            raise ValidationError(
                PARAM_TO_WIRE.get(param, param),
                value,
                f"nothing: model {model.model_id} does not take it (custom models declare their own inputs)",
                param=param,
            )
    control = request.control_image_id if request.control_image_id is not None else request.control_image
    pending = {
        "control": control if _pending(control) else None,
        "image": request.image if _pending(request.image) else None,
    }
    types = dict(model_types or {})
    lora_model, loras = declared_inputs.assign_loras(
        declared, declared_inputs.parse_loras(getattr(request, "loras", None)), types
    )
    fields = declared_inputs.fields_from_request(
        request,
        source_size=source_size,
        control_image=PLACEHOLDER_ASSET_ID if pending["control"] else control,
        image=PLACEHOLDER_ASSET_ID if pending["image"] else request.image,
        loras=loras,
        lora_model=lora_model,
    )
    mapped = declared_inputs.map_request(declared, fields)
    checked = declared_inputs.validate_body(declared, mapped.body, params=mapped.params, model_types=types)
    for role, url in (("control_image", pending["control"]), ("image", pending["image"])):
        d = declared.role(role)
        if url is not None and d is not None and d.name in checked:
            checked[d.name] = [url] if isinstance(checked[d.name], list) else url
    return checked


def custom_notes(request: Any, model: Any) -> tuple[str, ...]:
    """What the mapping tells the user for this request (e.g. "modality not used by this model")."""
    declared = declared_of(model)
    try:
        fields = declared_inputs.fields_from_request(request, control_image=PLACEHOLDER_ASSET_ID)
        return declared_inputs.map_request(declared, fields).notes
    except ValidationError:
        return ()


def _refuse_custom_only_fields(request: Any, model: Any) -> None:
    for param, value in (
        ("loras", getattr(request, "loras", None)),
        ("extra_inputs", getattr(request, "extra_inputs", None)),
    ):
        if value:
            raise ValidationError(
                param,
                value,
                f"nothing on {model.model_id}: it runs on the legacy ControlNet endpoints, which take one LoRA as "
                "model_id; LoRA lists and extra inputs go to custom models such as model_bfl-flux-1-dev",
                param=param,
            )


# --------------------------------------------------------------------------- the entry points


class RequestLike(Protocol):
    """What :func:`check_request` reads of a request (``models.ControlNetRequest``)."""

    @property
    def model_id(self) -> str: ...

    @property
    def image(self) -> str | None: ...

    @property
    def control_image(self) -> str | None: ...

    @property
    def endpoint(self) -> str: ...

    def to_body(self, family: str) -> dict[str, Any]: ...


class ModelLike(Protocol):
    """What :func:`check_request` reads of a model record (``models.Model``)."""

    @property
    def model_id(self) -> str: ...

    @property
    def family(self) -> str: ...

    @property
    def capabilities(self) -> Sequence[str]: ...


def check_request(
    request: RequestLike,
    model: ModelLike,
    *,
    model_types: Mapping[str, str | None] | None = None,
    source_size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The one check of a request against a model record; returns the strict wire body.

    A Flux, SDXL or SD 1.5 model gets the legacy body (:func:`validate_body`
    for its family). A custom model (``custom: true``, family ``custom``) gets
    the ``/generate/custom/{id}`` body built from the model's declared inputs
    (:func:`check_custom_request`); images given as data URLs pass with
    :data:`PLACEHOLDER_ASSET_ID` standing in and come back as they were, for
    the caller to upload and replace by their asset ids. ``model_types`` and
    ``source_size`` only matter to custom models (LoRA types; the control
    map's size for sizes of 0). Raises :class:`ValidationError` naming the
    field and the allowed values.

    :func:`precheck_request` is the model-independent part (run before the
    model lookup).
    """
    check_id("modelId", request.model_id)
    if model.family != CUSTOM:
        _refuse_custom_only_fields(request, model)
        return validate_body(request.endpoint, request.to_body(model.family), model.family)
    return check_custom_request(request, model, model_types=model_types, source_size=source_size)


def precheck_request(request: RequestLike) -> None:
    """Raise the :class:`ValidationError` of a problem that no model family accepts.

    The request is checked against each ControlNet family; when all of them
    reject it on the same field with the same explanation, the problem cannot
    depend on the model, so it is reported before any network call (not even
    the free model lookup). When they disagree only on the range, the widest
    range is named (what :func:`check_field` says). Family-specific problems
    wait for the lookup (:func:`check_request`). Embedded data URLs are also
    decoded once, so a corrupt one never leaves.
    """
    failures: list[ValidationError] = []
    for family in CONTROLNET_FAMILIES:
        try:
            validate_body(request.endpoint, request.to_body(family), family)
        except ValidationError as exc:
            failures.append(exc)
        else:
            break
    if len(failures) == len(CONTROLNET_FAMILIES) and all(e.field == failures[0].field for e in failures):
        first = failures[0]
        if all(e.allowed == first.allowed for e in failures):
            raise first
        if first.field in RULES:  # e.g. guidance 25: out of every family's range; say the widest one
            check_number(first.field, first.value)
    for field, value in (("controlImage", request.control_image), ("image", request.image)):
        if isinstance(value, str) and value.startswith("data:"):
            try:
                from_data_url(value)
            except ImageDecodeError as exc:
                raise ValidationError(field, value, f"a valid base64 PNG/JPEG/WebP data URL ({exc.message})") from None


def check_field(field: str, value: Any) -> Any:
    """One wire field's model-independent rule (what holds for some model family).

    ``prompt``, ``modelId``, ``modality`` and the numeric fields of
    :data:`RULES`. The widget checks are built on it, so they say exactly
    what the client says for the same value. Returns the checked value.
    """
    if field == "prompt":
        return check_prompt(value)
    if field == "modelId":
        return check_id("modelId", value)
    if field == "modality":
        return check_modality_for_some_family(value)
    return check_number(field, value)


# --------------------------------------------------------------------------- what the frontend is told


def describe_family(
    family: str,
    capabilities: Any = (),
    model_id: str | None = None,
    declared: declared_inputs.DeclaredModel | None = None,
) -> dict[str, Any]:
    """What a model of ``family`` allows: the modality choices, how many at once, guidance and sizes.

    A custom model with the ``controlnet`` capability runs on
    ``/generate/custom/{id}``: its modality choices, sizes and guidance come
    from its ``declared`` inputs (no modality input: an empty list and
    ``modality_used`` false), plus the summary of
    :func:`declared_inputs.model_summary` under ``declared``.
    """
    custom_controlnet = family == CUSTOM and CUSTOM_CONTROLNET_CAPABILITY in {
        str(c).lower() for c in (capabilities or ())
    }
    guidance = FAMILY_RANGES.get(family, {}).get("guidance", (RULES["guidance"].lo, RULES["guidance"].hi))
    size = {
        "width": list(size_range("width", family)),
        "height": list(size_range("height", family)),
        "multiple_of": size_multiple(family),
    }
    max_modalities = MAX_MODALITIES.get(family, 0)
    modalities = list(MODALITIES_BY_FAMILY.get(family, ())) + list(PRESETS_BY_FAMILY.get(family, ()))
    summary: dict[str, Any] | None = None
    if custom_controlnet:
        summary = declared_inputs.model_summary(declared) if declared is not None else None
        modalities = list(summary["modalities"]) if summary else []
        max_modalities = 1 if modalities else 0
        if declared is not None:
            g = declared.role("guidance")
            if g is not None and g.min is not None and g.max is not None:
                guidance = (g.min, g.max)
            w, h = declared.role("width"), declared.role("height")
            if w is not None and h is not None:
                size = {
                    "width": [int(w.min or 1), int(w.max or 4096)],
                    "height": [int(h.min or 1), int(h.max or 4096)],
                    "multiple_of": int(w.step) if w.step is not None and w.integer else 1,
                }
    info: dict[str, Any] = {
        "family": family,
        "family_label": family_label(family),
        "modalities": modalities,
        "max_modalities": max_modalities,
        "guidance_range": [float(guidance[0]), float(guidance[1])],
        "size_range": size,
        "controlnet": family != CUSTOM or custom_controlnet,
    }
    if custom_controlnet and model_id is not None:
        info["path"] = custom_path(model_id)
    if summary is not None:
        info["declared"] = summary
        info["modality_used"] = summary["roles"]["modality"] is not None
        info["price_widgets"] = summary["price_widgets"]
    elif family == CUSTOM and not custom_controlnet:
        info["note"] = "custom models do not run on the ControlNet endpoints; use a Flux, SDXL or SD 1.5 model"
    return info
