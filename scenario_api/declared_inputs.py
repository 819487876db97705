"""Model-declared inputs of Scenario's custom models (``GET /models/{id}``: ``inputs`` and ``uiConfig``).

A model with ``custom: true`` runs on ``POST /generate/custom/{modelId}`` and its
body is whatever the model declares in ``GET /models/{id}`` (``model.inputs``,
plus ``model.uiConfig``). This module is the one place that reads those
declarations and applies them, for the client (before any upload or submit)
and for the emulator (as the server's 400/404 answers):

* :class:`DeclaredModel` / :func:`parse_inputs` parse a record leniently: keys
  this module does not know are ignored, a malformed declaration is skipped,
  an unknown ``type`` is kept and checked only for presence.
* :func:`check_body` lists the :class:`Violation` s of a body: types, ``min``,
  ``max``, ``step``, ``allowedValues``, ``minLength`` / ``maxLength`` (the item
  count for arrays), every recorded form of ``required`` and ``modelTypes``
  when a referenced model's type is known. Each violation renders both the
  client's :class:`~scenario_api.errors.ValidationError` (naming the input,
  the model and what is allowed) and Scenario's own ``reason`` text (the
  recorded ones: ``Input lorasScale must be at most 2``, ``Input loras must be
  at most 6 items long``, ``Invalid model(s): ...``, ``Model X not found``).
* :func:`validate_body` raises the first violation as a ``ValidationError``
  (client mode) and returns the normalised body.
* :func:`map_request` maps the pack's generic fields (control map, modality,
  strength, samples, size, init image, LoRAs, extra inputs...) onto whatever a
  model declares, **by meaning**: inputs are found by declared type, kind,
  group, ``uiConfig`` and name patterns, never by model id.
* :func:`parse_loras` reads the ``model_id[:scale]`` list grammar;
  :func:`parse_extra_inputs` and :func:`parse_assignment` read unknown inputs
  given as a JSON object or as ``NAME=VALUE``.

Two modes: ``client`` (strict: unknown input names refused with the list of
the model's inputs, pairing rules of LoRA scales, asset ids only) and
``server`` (what Scenario was recorded to do: unknown names dropped, numeric
strings read as numbers, a LoRA scale *below* its minimum or a missing scale
accepted, as in the recorded dry runs).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationError

__all__ = [
    "INPUT_TYPES",
    "CLIENT",
    "SERVER",
    "Requirement",
    "InputDecl",
    "LorasComponent",
    "ResolutionComponent",
    "DeclaredModel",
    "Violation",
    "GenericFields",
    "MappedBody",
    "parse_inputs",
    "parse_requirement",
    "inference_types",
    "check_body",
    "validate_body",
    "map_request",
    "derive_size",
    "parse_loras",
    "format_loras",
    "parse_extra_inputs",
    "parse_assignment",
    "cost_inputs",
    "describe_inputs",
    "MAX_LORA_ENTRIES",
]

INPUT_TYPES = (
    "boolean",
    "file",
    "file_array",
    "inputs_array",
    "model",
    "model_array",
    "number",
    "number_array",
    "string",
    "string_array",
)
ARRAY_ITEM_TYPE = {
    "file_array": "file",
    "model_array": "model",
    "number_array": "number",
    "string_array": "string",
    "inputs_array": "inputs",
}

CLIENT = "client"
SERVER = "server"

_ASSET_ID_RE = re.compile(r"^asset_[A-Za-z0-9_-]{1,128}$")
_MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")

# Names the server maps to canonical modality names (see spec.MODALITY_ALIASES); kept
# local so that this module stays free of spec (spec builds on this module).
_MODALITY_ALIASES = {"openpose": "pose", "normal": "normal-map"}
_MISSING = object()
_STEP_TOLERANCE = 1e-6


# --------------------------------------------------------------------------- declarations


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def _fmt(x: float) -> str:
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _names(value: Any) -> tuple[tuple[str, str], ...]:
    """``{"input": "message"}``, a list of names or one name -> ((name, message), ...)."""
    if isinstance(value, Mapping):
        return tuple((str(k), v if isinstance(v, str) else "") for k, v in value.items() if isinstance(k, str))
    if isinstance(value, str):
        return ((value, ""),)
    if isinstance(value, (list, tuple)):
        return tuple((v, "") for v in value if isinstance(v, str))
    return ()


def _values(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


@dataclass(frozen=True)
class Requirement:
    """When an input must be present (``required`` in any of its recorded forms).

    ``always``; ``if_defined`` / ``if_not_defined``: (other input, message)
    pairs; ``conditional``: (other input, accepted values) pairs combined
    with ``operator`` (``and`` / ``or``; ``or`` when the record omits it);
    ``inference_types`` (the observed ``{"when": {"inferenceType": [...]}}``)
    and other ``when`` keys naming inputs (``when_values``).
    """

    always: bool = False
    if_defined: tuple[tuple[str, str], ...] = ()
    if_not_defined: tuple[tuple[str, str], ...] = ()
    conditional: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    operator: str = "or"
    inference_types: tuple[str, ...] = ()
    when_values: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @property
    def ever(self) -> bool:
        return bool(
            self.always
            or self.if_defined
            or self.if_not_defined
            or self.conditional
            or self.inference_types
            or self.when_values
        )

    def why(self, body: Mapping[str, Any], inference: Iterable[str]) -> str | None:
        """Why the input is required for ``body`` (a short phrase), or None when it is not."""
        if self.always:
            return "always"
        for other, message in self.if_defined:
            if _defined(body.get(other, _MISSING)):
                return message or f"when {other} is given"
        for other, message in self.if_not_defined:
            if not _defined(body.get(other, _MISSING)):
                return message or f"when {other} is not given"
        if self.conditional:
            hits = [body.get(other, _MISSING) in values for other, values in self.conditional]
            if all(hits) if self.operator == "and" else any(hits):
                parts = ", ".join(f"{o} is {' or '.join(map(str, v))}" for o, v in self.conditional)
                return f"when {parts}"
        kinds = set(inference)
        if self.inference_types and kinds & set(self.inference_types):
            return f"for {' / '.join(sorted(kinds & set(self.inference_types)))} generations"
        for other, values in self.when_values:
            if body.get(other, _MISSING) in values:
                return f"when {other} is {' or '.join(map(str, values))}"
        return None


def parse_requirement(raw: Any) -> Requirement:
    """Read ``required`` leniently: ``true``, ``{"always": true}``, ``ifDefined``... unknown keys ignored."""
    if raw is True:
        return Requirement(always=True)
    if not isinstance(raw, Mapping):
        return Requirement()
    cond = raw.get("conditional")
    conditional: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    operator = "or"
    if isinstance(cond, Mapping):
        values = cond.get("values")
        if isinstance(values, Mapping):
            conditional = tuple((str(k), _values(v)) for k, v in values.items() if isinstance(k, str))
        if str(cond.get("operator", "")).lower() == "and":
            operator = "and"
    kinds: tuple[str, ...] = ()
    when_values: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    when = raw.get("when")
    if isinstance(when, Mapping):
        for key, value in when.items():
            if key == "inferenceType":
                kinds = tuple(str(v) for v in _values(value) if isinstance(v, str))
            elif isinstance(key, str):
                when_values += ((key, _values(value)),)
    return Requirement(
        always=raw.get("always") is True,
        if_defined=_names(raw.get("ifDefined")),
        if_not_defined=_names(raw.get("ifNotDefined")),
        conditional=conditional,
        operator=operator,
        inference_types=kinds,
        when_values=when_values,
    )


def _defined(value: Any) -> bool:
    """Given and not empty: ``None``, ``""`` and ``[]`` count as not given (the records' defaults)."""
    return value is not _MISSING and value is not None and value != "" and value != []


@dataclass(frozen=True)
class InputDecl:
    """One declared input. ``default`` is ``None`` when the record declares none."""

    name: str
    type: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    allowed_values: tuple[Any, ...] | None = None
    min_length: int | None = None
    max_length: int | None = None
    kind: str | None = None
    model_types: tuple[str, ...] = ()
    required: Requirement = field(default_factory=Requirement)
    cost_impact: bool = False
    label: str | None = None
    description: str | None = None
    group: str | None = None
    nested: tuple[InputDecl, ...] = ()

    @property
    def is_array(self) -> bool:
        return self.type in ARRAY_ITEM_TYPE

    @property
    def item_type(self) -> str:
        return ARRAY_ITEM_TYPE.get(self.type, self.type)

    @property
    def integer(self) -> bool:
        """Numbers with an integral step (``numOutputs``, ``width``...) must be integers."""
        return self.step is not None and self.step >= 1 and float(self.step).is_integer()

    @property
    def has_default(self) -> bool:
        return _defined(self.default if self.default is not None else _MISSING)

    def describe(self) -> str:
        """What the input accepts, as a phrase (used in error messages and docs)."""
        t = self.item_type
        if t == "number":
            what = "an integer" if self.integer else "a number"
            if self.min is not None and self.max is not None:
                rng = (
                    f" from {_fmt(self.min)} to {_fmt(self.max)}"
                    if self.integer
                    else f" in [{_fmt(self.min)}, {_fmt(self.max)}]"
                )
            elif self.min is not None:
                rng = f" of at least {_fmt(self.min)}"
            elif self.max is not None:
                rng = f" of at most {_fmt(self.max)}"
            else:
                rng = ""
            step = f", a multiple of {_fmt(self.step)}" if self.step and self.step != 1 else ""
            phrase = what + rng + step
        elif t == "string":
            phrase = "a text"
            if self.allowed_values:
                phrase = "one of: " + ", ".join(map(str, self.allowed_values))
            elif self.max_length is not None and not self.is_array:
                phrase += f" of at most {self.max_length} characters"
        elif t == "file":
            phrase = f"an asset id like 'asset_...' ({self.kind or 'image'}; upload files first)"
        elif t == "model":
            phrase = "a model id"
            if self.model_types:
                phrase += " of type " + " or ".join(self.model_types)
        elif t == "boolean":
            phrase = "true or false"
        elif t == "inputs":
            phrase = "an object of " + ", ".join(d.name for d in self.nested) if self.nested else "an object"
        else:
            phrase = "a value"
        if self.is_array:
            count = ""
            if self.min_length is not None and self.max_length is not None:
                count = f" of {self.min_length} to {self.max_length} items"
            elif self.max_length is not None:
                count = f" of at most {self.max_length} items"
            elif self.min_length is not None:
                count = f" of at least {self.min_length} items"
            return f"a list{count}, each item {phrase}"
        return phrase


def _length(raw: Any) -> int | None:
    n = _num(raw)
    return int(n) if n is not None and n >= 0 else None


def parse_input(raw: Any) -> InputDecl | None:
    """One declaration, or None when it has no usable name (lenient: unknown keys ignored)."""
    if not isinstance(raw, Mapping):
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    type_ = raw.get("type")
    type_ = type_.strip().lower() if isinstance(type_, str) and type_.strip() else "string"
    allowed = raw.get("allowedValues")
    if not isinstance(allowed, (list, tuple)) or not allowed:
        # older emulator records and some UIs say "options"
        allowed = raw.get("options") if isinstance(raw.get("options"), (list, tuple)) and raw.get("options") else None
    types = raw.get("modelTypes")
    step = _num(raw.get("step"))
    if step is not None and step <= 0:
        step = None
    if step is None and raw.get("integer") is True:
        step = 1.0
    nested = raw.get("inputs")
    return InputDecl(
        name=name.strip(),
        type=type_,
        default=raw.get("default"),
        min=_num(raw.get("min")),
        max=_num(raw.get("max")),
        step=step,
        allowed_values=tuple(allowed) if allowed else None,
        min_length=_length(raw.get("minLength")),
        max_length=_length(raw.get("maxLength")),
        kind=raw.get("kind") if isinstance(raw.get("kind"), str) else None,
        model_types=tuple(str(t) for t in types if isinstance(t, str)) if isinstance(types, (list, tuple)) else (),
        required=parse_requirement(raw.get("required")),
        cost_impact=raw.get("costImpact") is True,
        label=raw.get("label") if isinstance(raw.get("label"), str) else None,
        description=raw.get("description") if isinstance(raw.get("description"), str) else None,
        group=raw.get("group") if isinstance(raw.get("group"), str) else None,
        nested=parse_inputs(nested) if isinstance(nested, (list, tuple)) else (),
    )


def parse_inputs(raw: Any) -> tuple[InputDecl, ...]:
    """A record's ``inputs`` list; malformed entries skipped, the first of duplicate names kept."""
    if not isinstance(raw, (list, tuple)):
        return ()
    out: dict[str, InputDecl] = {}
    for item in raw:
        decl = parse_input(item)
        if decl is not None and decl.name not in out:
            out[decl.name] = decl
    return tuple(out.values())


@dataclass(frozen=True)
class LorasComponent:
    """``uiConfig.lorasComponent``: which inputs carry the LoRA list, their scales and a single model id."""

    model_input: str | None = None
    scale_input: str | None = None
    model_id_input: str | None = None


@dataclass(frozen=True)
class ResolutionComponent:
    """``uiConfig.resolutionComponent``: the size inputs and their presets ((label, width, height))."""

    width_input: str | None = None
    height_input: str | None = None
    presets: tuple[tuple[str, int | None, int | None], ...] = ()


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# Role -> ordered name patterns (full-match, case-insensitive). Types are checked separately.
_ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "prompt": (r"prompt", r"text", r"positivePrompt"),
    "negative_prompt": (r"negativePrompt", r"negative_?prompt", r".*negative.*"),
    "control_image": (
        r"controlImages?",
        r"control_?image_?(id)?s?",
        r"control(net)?(Map|Maps|Input|Inputs|Images?)",
        r"conditioning_?images?",
        r".*control.*image.*",
        r".*control.*map.*",
    ),
    "modality": (r"controlModality", r"control_?(modality|type|mode)", r"modality", r".*modality.*"),
    "control_scale": (
        r"controlStrength",
        r"controlnetConditioningScale",
        r"control_?(net_?)?(strength|scale|weight)",
        r"control_?net_?conditioning_?scale",
        r"conditioning_?scale",
        r".*control.*(strength|scale|weight).*",
        r".*conditioning.*scale.*",
    ),
    "control_start": (r"controlStart", r"control_?(guidance_?)?start", r".*control.*start.*"),
    "control_end": (r"controlEnd", r"control_?(guidance_?)?end", r".*control.*end.*"),
    "image": (r"image", r"init_?image", r"input_?image", r"source_?image", r"initImageId"),
    "strength": (r"strength", r"image_?strength", r"denoising_?strength", r"init_?strength"),
    "num_outputs": (r"numOutputs", r"num_?(outputs|images|samples)", r"(image|output|sample)_?count", r"n"),
    "steps": (r"numInferenceSteps", r"num_?inference_?steps", r"(num_?)?steps", r"inference_?steps"),
    "guidance": (r"guidance", r"guidance_?scale", r"cfg(_?scale)?"),
    "seed": (r"seed",),
    "width": (r"width",),
    "height": (r"height",),
}
_ROLE_TYPES: dict[str, tuple[str, ...]] = {
    "prompt": ("string",),
    "negative_prompt": ("string",),
    "control_image": ("file", "file_array"),
    "modality": ("string", "string_array"),
    "control_scale": ("number", "number_array"),
    "control_start": ("number",),
    "control_end": ("number",),
    "image": ("file",),
    "strength": ("number",),
    "num_outputs": ("number",),
    "steps": ("number",),
    "guidance": ("number",),
    "seed": ("number",),
    "width": ("number",),
    "height": ("number",),
}
ROLES = tuple(_ROLE_NAMES) + ("loras", "lora_scales", "lora_model")


@dataclass(frozen=True)
class DeclaredModel:
    """A model's declared inputs and the ``uiConfig`` parts that say what they mean."""

    model_id: str
    type: str | None = None
    custom: bool = True
    capabilities: tuple[str, ...] = ()
    inputs: tuple[InputDecl, ...] = ()
    loras: LorasComponent | None = None
    resolution: ResolutionComponent | None = None
    _roles: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DeclaredModel:
        """From ``GET /models/{id}`` (``{"model": {...}}`` or the bare record); lenient."""
        m = record.get("model", record) if isinstance(record, Mapping) else {}
        if not isinstance(m, Mapping):
            m = {}
        ui = m.get("uiConfig") if isinstance(m.get("uiConfig"), Mapping) else {}
        loras = resolution = None
        lc = ui.get("lorasComponent")
        if isinstance(lc, Mapping):
            loras = LorasComponent(
                _str_or_none(lc.get("modelInput")),
                _str_or_none(lc.get("scaleInput")),
                _str_or_none(lc.get("modelIdInput")),
            )
        rc = ui.get("resolutionComponent")
        if isinstance(rc, Mapping):
            presets: list[tuple[str, int | None, int | None]] = []
            for p in rc.get("presets") or ():
                if isinstance(p, Mapping):
                    w, h = _num(p.get("width")), _num(p.get("height"))
                    presets.append(
                        (
                            str(p.get("label") or ""),
                            int(w) if w is not None else None,
                            int(h) if h is not None else None,
                        )
                    )
            resolution = ResolutionComponent(
                _str_or_none(rc.get("widthInput")), _str_or_none(rc.get("heightInput")), tuple(presets)
            )
        caps = m.get("capabilities")
        return cls(
            model_id=str(m.get("id") or m.get("modelId") or ""),
            type=m.get("type") if isinstance(m.get("type"), str) else None,
            custom=bool(m.get("custom", True)),
            capabilities=tuple(str(c) for c in caps) if isinstance(caps, (list, tuple)) else (),
            inputs=parse_inputs(m.get("inputs")),
            loras=loras,
            resolution=resolution,
        )

    # ------------------------------------------------------------------ lookups

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.inputs)

    def get(self, name: str | None) -> InputDecl | None:
        if not name:
            return None
        for d in self.inputs:
            if d.name == name:
                return d
        return None

    def role(self, role: str) -> InputDecl | None:
        """The declared input that plays ``role`` (see :data:`ROLES`), found by meaning; None if absent."""
        if role not in self._roles:
            self._roles[role] = self._find_role(role)
        return self.get(self._roles[role])

    def _find_role(self, role: str) -> str | None:
        if role in ("loras", "lora_scales", "lora_model"):
            return self._find_lora_role(role)
        if role in ("width", "height") and self.resolution is not None:
            name = self.resolution.width_input if role == "width" else self.resolution.height_input
            if self.get(name) is not None:
                return name
        types = _ROLE_TYPES[role]
        candidates = [d for d in self.inputs if d.type in types]
        if role in ("prompt", "negative_prompt"):
            negative = [d for d in candidates if "negative" in d.name.lower()]
            if role == "negative_prompt":
                candidates = negative
            else:
                candidates = [d for d in candidates if d not in negative]
        if role == "image":
            candidates = [d for d in candidates if not _looks_control(d) and "mask" not in d.name.lower()]
        if role == "strength":
            candidates = [d for d in candidates if not _looks_control(d)]
        if role in ("num_outputs", "steps", "guidance", "seed", "width", "height"):
            candidates = [d for d in candidates if not _looks_control(d)]
        for pattern in _ROLE_NAMES[role]:
            rx = re.compile(pattern, re.I)
            for d in candidates:
                if rx.fullmatch(d.name):
                    return d.name
        if role == "control_image":
            # a file input in a ControlNet group, whatever its name
            for d in candidates:
                if d.group and "control" in d.group.lower():
                    return d.name
        if role == "control_scale":
            for d in candidates:
                if d.group and "control" in d.group.lower() and not re.search(r"start|end", d.name, re.I):
                    return d.name
        if role == "modality":
            for d in candidates:
                if d.allowed_values and d.group and "control" in d.group.lower():
                    return d.name
        if role == "prompt":
            flagged = [d for d in candidates if d.name.lower().endswith("prompt")]
            return flagged[0].name if flagged else None
        return None

    def _find_lora_role(self, role: str) -> str | None:
        lc = self.loras
        if lc is not None:
            name = {"loras": lc.model_input, "lora_scales": lc.scale_input, "lora_model": lc.model_id_input}[role]
            if self.get(name) is not None:
                return name
        if role == "loras":
            arrays = [d for d in self.inputs if d.type == "model_array"]
            named = [d for d in arrays if "lora" in d.name.lower()] or arrays
            return named[0].name if named else None
        if role == "lora_scales":
            arrays = [d for d in self.inputs if d.type == "number_array"]
            loras = self.role("loras")
            stem = loras.name.lower() if loras else "lora"
            named = [d for d in arrays if d.name.lower().startswith(stem) or "lora" in d.name.lower()]
            return named[0].name if named else None
        singles = [d for d in self.inputs if d.type == "model"]
        named = [d for d in singles if d.name.lower() in ("modelid", "model_id", "model", "lora")] or singles
        return named[0].name if named else None

    # ------------------------------------------------------------------ facts for callers

    @property
    def cost_impact_inputs(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.inputs if d.cost_impact)

    @property
    def model_inputs(self) -> tuple[InputDecl, ...]:
        return tuple(d for d in self.inputs if d.type in ("model", "model_array"))

    def role_map(self) -> dict[str, str | None]:
        """Role -> declared input name (None when the model has no such input), for docs and the web UI."""
        return {role: (d.name if (d := self.role(role)) is not None else None) for role in ROLES}


def _looks_control(d: InputDecl) -> bool:
    return (
        "control" in d.name.lower()
        or "conditioning" in d.name.lower()
        or bool(d.group and "control" in d.group.lower())
    )


def inference_types(model: DeclaredModel, body: Mapping[str, Any]) -> tuple[str, ...]:
    """What kind of generation ``body`` asks for: ``controlnet`` and/or ``img2img``, else ``txt2img``."""
    kinds = []
    control, image = model.role("control_image"), model.role("image")
    if control is not None and _defined(body.get(control.name, _MISSING)):
        kinds.append("controlnet")
    if image is not None and _defined(body.get(image.name, _MISSING)):
        kinds.append("img2img")
    return tuple(kinds) or ("txt2img",)


def cost_inputs(model: DeclaredModel) -> tuple[str, ...]:
    """The inputs whose change can change the price (``costImpact: true``)."""
    return model.cost_impact_inputs


def describe_inputs(model: DeclaredModel) -> list[dict[str, Any]]:
    """A JSON-friendly summary of the declared inputs (name, type, what is allowed, default, role)."""
    roles = {v: k for k, v in model.role_map().items() if v}
    out = []
    for d in model.inputs:
        item: dict[str, Any] = {"name": d.name, "type": d.type, "allowed": d.describe()}
        if d.default is not None:
            item["default"] = d.default
        if d.cost_impact:
            item["costImpact"] = True
        if d.required.ever:
            item["required"] = True if d.required.always else "conditional"
        if d.name in roles:
            item["role"] = roles[d.name]
        out.append(item)
    return out


# --------------------------------------------------------------------------- violations


@dataclass(frozen=True)
class Violation:
    """One broken rule: ``input``, what was given, what is allowed, and Scenario's text for it.

    ``status`` is the HTTP status the server answers with (404 for a model that does not exist).
    """

    input: str
    code: str
    value: Any
    allowed: str
    reason: str
    status: int = 400

    def error(self, model_id: str, params: Mapping[str, str] | None = None) -> ValidationError:
        """The client's error: names the input (and the node/CLI field it came from), the model, what is allowed."""
        where = f"{self.allowed} (model {model_id})" if model_id else self.allowed
        param = (params or {}).get(self.input)
        return ValidationError(self.input, self.value, where, param=param or self.input)


_PLURAL = {
    "number": "numbers",
    "string": "strings",
    "boolean": "booleans",
    "file": "asset ids",
    "model": "model ids",
    "inputs": "objects",
}


class _Checker:
    def __init__(
        self,
        model: DeclaredModel,
        mode: str,
        model_types: Mapping[str, str | None] | None,
    ) -> None:
        self.model = model
        self.server = mode == SERVER
        self.model_types = model_types or {}
        self.out: list[Violation] = []

    def add(self, name: str, code: str, value: Any, allowed: str, reason: str, status: int = 400) -> None:
        self.out.append(Violation(name, code, value, allowed, reason, status))

    # -- scalar checks; each returns the (possibly normalised) value or _MISSING on failure

    def number(self, d: InputDecl, label: str, value: Any, *, array_item: bool = False) -> Any:
        v = value
        if self.server and isinstance(v, str):
            try:
                v = int(v.strip())
            except ValueError:
                try:
                    v = float(v.strip())
                except ValueError:
                    v = value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self.add(d.name, "type", value, d.describe(), f"Input {label} must be a number")
            return _MISSING
        if d.integer:
            if not float(v).is_integer():
                self.add(d.name, "type", value, d.describe(), f"Input {label} must be an integer")
                return _MISSING
            v = int(v)
        if d.min is not None and v < d.min:
            # recorded (2026-10): a LoRA scale below its minimum is accepted by the server
            if not (self.server and array_item):
                self.add(d.name, "min", value, d.describe(), f"Input {d.name} must be at least {_fmt(d.min)}")
                return _MISSING
        if d.max is not None and v > d.max:
            self.add(d.name, "max", value, d.describe(), f"Input {d.name} must be at most {_fmt(d.max)}")
            return _MISSING
        if d.step:
            base = d.min if d.min is not None else 0.0
            ratio = (float(v) - base) / d.step
            if abs(ratio - round(ratio)) > _STEP_TOLERANCE * max(1.0, abs(ratio)):
                self.add(d.name, "step", value, d.describe(), f"Input {d.name} must be a multiple of {_fmt(d.step)}")
                return _MISSING
        return v

    def string(self, d: InputDecl, label: str, value: Any, *, array_item: bool = False) -> Any:
        if not isinstance(value, str):
            self.add(d.name, "type", value, d.describe(), f"Input {label} must be a string")
            return _MISSING
        if d.allowed_values:
            v = value
            if self.server and self.model.role("modality") is d:
                v = _MODALITY_ALIASES.get(value.strip().lower(), value.strip().lower())
            if v not in d.allowed_values:
                allowed = ", ".join(map(str, d.allowed_values))
                self.add(d.name, "allowed", value, d.describe(), f"Input {d.name} must be one of: {allowed}")
                return _MISSING
            return v
        if not array_item:
            if d.max_length is not None and len(value) > d.max_length:
                shown = f"<{len(value)} characters>"
                self.add(
                    d.name,
                    "max_length",
                    shown,
                    d.describe(),
                    f"Input {d.name} must be at most {d.max_length} characters long",
                )
                return _MISSING
            if d.min_length is not None and len(value) < d.min_length:
                self.add(
                    d.name,
                    "min_length",
                    value,
                    d.describe(),
                    f"Input {d.name} must be at least {d.min_length} characters long",
                )
                return _MISSING
        return value

    def file(self, d: InputDecl, label: str, value: Any) -> Any:
        if not isinstance(value, str) or not _ASSET_ID_RE.match(value.strip()):
            self.add(d.name, "type", value, d.describe(), f"Input {label} must be an asset id")
            return _MISSING
        return value.strip()

    def model_id(self, d: InputDecl, label: str, value: Any) -> Any:
        if value == "" and d.type == "model":
            return value  # the records' default: no model
        if not isinstance(value, str) or not _MODEL_ID_RE.match(value.strip()) or ".." in value:
            self.add(d.name, "type", value, d.describe(), f"Input {label} must be a model id")
            return _MISSING
        return value.strip()

    def boolean(self, d: InputDecl, label: str, value: Any) -> Any:
        if not isinstance(value, bool):
            self.add(d.name, "type", value, d.describe(), f"Input {label} must be a boolean")
            return _MISSING
        return value

    def nested(self, d: InputDecl, label: str, value: Any) -> Any:
        if not isinstance(value, Mapping):
            self.add(d.name, "type", value, d.describe(), f"Input {label} must be an object")
            return _MISSING
        if not d.nested:
            return dict(value)
        sub = DeclaredModel(self.model.model_id, inputs=d.nested)
        inner = _Checker(sub, SERVER if self.server else CLIENT, self.model_types)
        result = inner.body(value)
        for v in inner.out:
            self.add(d.name, v.code, value, f"{d.name}: {v.input}: {v.allowed}", v.reason, v.status)
        return result if not inner.out else _MISSING

    def item(self, d: InputDecl, label: str, value: Any, *, array_item: bool) -> Any:
        t = d.item_type
        if t == "number":
            return self.number(d, label, value, array_item=array_item)
        if t == "string":
            return self.string(d, label, value, array_item=array_item)
        if t == "file":
            return self.file(d, label, value)
        if t == "model":
            return self.model_id(d, label, value)
        if t == "boolean":
            return self.boolean(d, label, value)
        if t == "inputs":
            return self.nested(d, label, value)
        return value  # a type this module does not know yet: presence only

    def value(self, d: InputDecl, value: Any) -> Any:
        if not d.is_array:
            return self.item(d, d.name, value, array_item=False)
        if not isinstance(value, (list, tuple)):
            self.add(
                d.name,
                "type",
                value,
                d.describe(),
                f"Input {d.name} must be an array of {_PLURAL.get(d.item_type, 'values')}",
            )
            return _MISSING
        if d.max_length is not None and len(value) > d.max_length:
            self.add(
                d.name,
                "max_length",
                list(value),
                d.describe(),
                f"Input {d.name} must be at most {d.max_length} items long",
            )
            return _MISSING
        if d.min_length is not None and len(value) < d.min_length:
            self.add(
                d.name,
                "min_length",
                list(value),
                d.describe(),
                f"Input {d.name} must be at least {d.min_length} items long",
            )
            return _MISSING
        out = []
        before = len(self.out)
        for item in value:
            checked = self.item(d, d.name, item, array_item=True)
            if len(self.out) > before:
                # name the whole list in the client's error, as the user wrote it
                v = self.out[-1]
                self.out[-1] = Violation(v.input, v.code, list(value), v.allowed, v.reason, v.status)
                return _MISSING
            out.append(checked)
        return out

    # -- the whole body

    def body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        model = self.model
        out: dict[str, Any] = {}
        known = set(model.names)
        for key, value in body.items():
            if key not in known:
                if not self.server:
                    self.add(
                        str(key),
                        "unknown",
                        value,
                        f"one of the inputs this model declares: {', '.join(model.names) or '(none)'}",
                        f"Input {key} is not allowed",
                    )
                continue
            if value is None:
                continue
            checked = self.value(model.get(key), value)  # type: ignore[arg-type]
            if checked is not _MISSING:
                out[key] = checked
        kinds = inference_types(model, out)
        for d in model.inputs:
            if _defined(out.get(d.name, _MISSING)):
                continue
            why = d.required.why(out, kinds)
            if why is not None and not (d.name in body and body[d.name] is not None and d.name not in out):
                self.add(
                    d.name,
                    "required",
                    None,
                    f"a value ({d.describe()}): required {why}",
                    f"Input {d.name} is required",
                )
        self.model_refs(out)
        self.pairs(out)
        return out

    def model_refs(self, out: Mapping[str, Any]) -> None:
        """Referenced models: not found (404), then the union of all model inputs' types, then each input's.

        The two type stages reproduce Scenario's recorded texts: a Flux.2 LoRA in
        ``loras`` is refused against the union (``flux.1-lora, flux.1-composition``),
        a composition in ``loras`` against that input's own list (``flux.1-lora``).
        """
        refs: list[tuple[InputDecl, str]] = []
        for d in self.model.model_inputs:
            refs.extend((d, mid) for mid in _ids_of(out.get(d.name)))
        for d, mid in refs:
            if mid in self.model_types and self.model_types[mid] is None:
                self.add(
                    d.name, "not_found", mid, "a model that exists and that you can read", f"Model {mid} not found", 404
                )
                return
        union: list[str] = []
        for d in self.model.model_inputs:
            union.extend(t for t in d.model_types if t not in union)
        stages: list[tuple[list[tuple[InputDecl, str]], tuple[str, ...]]] = [(refs, tuple(union))]
        stages += [([(d, m) for d, m in refs if d is decl], decl.model_types) for decl in self.model.model_inputs]
        for pairs, allowed in stages:
            if not allowed:
                continue
            bad = [(d, mid) for d, mid in pairs if self.model_types.get(mid) not in (None, *allowed)]
            if bad:
                ids = list(dict.fromkeys(mid for _, mid in bad))
                given = ", ".join(f"{mid} is a {self.model_types[mid]}" for mid in ids)
                kinds = ", ".join(allowed)
                self.add(
                    bad[0][0].name,
                    "model_type",
                    ids[0] if len(ids) == 1 else ids,
                    f"models of type {kinds} ({given})",
                    f"Invalid model(s): {', '.join(ids)}.\nAllowed model types: {kinds}",
                )
                return

    def pairs(self, out: Mapping[str, Any]) -> None:
        """Rules between inputs: LoRA scales pair with LoRAs (client), control start below end (both)."""
        model = self.model
        start, end = model.role("control_start"), model.role("control_end")
        if (
            start
            and end
            and isinstance(out.get(start.name), (int, float))
            and isinstance(out.get(end.name), (int, float))
        ):
            if out[start.name] >= out[end.name]:
                self.add(
                    start.name,
                    "order",
                    out[start.name],
                    f"a value below {end.name} ({_fmt(out[end.name])})",
                    f"Input {start.name} must be less than {end.name}",
                )
        if self.server:
            return  # recorded: loras without lorasScale, or fewer scales than LoRAs, are accepted
        prompt = model.role("prompt")
        if prompt and isinstance(out.get(prompt.name), str) and not out[prompt.name].strip():
            self.add(
                prompt.name, "required", out[prompt.name], "a non-empty text prompt", f"Input {prompt.name} is required"
            )
        image, strength = model.role("image"), model.role("strength")
        if image and strength and strength.name in out and image.name not in out:
            self.add(
                strength.name,
                "order",
                out[strength.name],
                f"{strength.name} only with an init image ({image.name})",
                f"Input {strength.name} needs {image.name}",
            )
        loras, scales = model.role("loras"), model.role("lora_scales")
        if loras and scales:
            n = len(out.get(loras.name) or [])
            s = out.get(scales.name)
            if s is not None and len(s) != n:
                self.add(
                    scales.name,
                    "pairing",
                    s,
                    f"one scale per LoRA in {loras.name} ({n} given)",
                    f"Input {scales.name} must have one item per {loras.name} item",
                )


def check_body(
    model: DeclaredModel,
    body: Mapping[str, Any],
    *,
    mode: str = CLIENT,
    model_types: Mapping[str, str | None] | None = None,
) -> tuple[dict[str, Any], list[Violation]]:
    """The normalised body and every violation found (an empty list: the body is valid).

    ``model_types`` maps referenced model ids (LoRAs, compositions) to their
    ``type`` when known; ``None`` as a value means the model does not exist.
    Ids absent from it are not type-checked.
    """
    if mode not in (CLIENT, SERVER):
        raise ValueError(f"mode must be {CLIENT!r} or {SERVER!r}")
    if not isinstance(body, Mapping):
        v = Violation("(body)", "type", body, "a JSON object of inputs", "Body must be an object")
        return {}, [v]
    checker = _Checker(model, mode, model_types)
    out = checker.body(body)
    return out, checker.out


def validate_body(
    model: DeclaredModel,
    body: Mapping[str, Any],
    *,
    mode: str = CLIENT,
    model_types: Mapping[str, str | None] | None = None,
    params: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The normalised body, or :class:`ValidationError` for its first violation.

    ``params`` maps input names to the node widget / CLI flag they came from,
    so the error names both (``Invalid lorasScale (loras): ...``).
    """
    out, violations = check_body(model, body, mode=mode, model_types=model_types)
    if violations:
        raise violations[0].error(model.model_id, params)
    return out


# --------------------------------------------------------------------------- the mapping by meaning


@dataclass(frozen=True)
class GenericFields:
    """What the generate nodes and the CLI know, independent of any model's input names.

    ``None`` = not given. ``width`` / ``height`` 0 = derive (from
    ``source_size``, the control map's pixel size, fitted to the model's
    range and step). ``modality`` is ``name[:weight]``; the weight is the
    control scale unless ``modality_strength`` is given. ``loras`` are
    ``(model id, scale or None)``; ``lora_model`` is a LoRA or composition
    given as the model (sent through the base's single-model input).
    ``fixed`` names the fields that come from always-present widgets: a model
    that has no input for one of them gets a note instead of an error.
    """

    prompt: str
    control_image: str | None = None
    modality: str | None = None
    modality_strength: float | None = None
    num_samples: int | None = None
    width: int = 0
    height: int = 0
    source_size: tuple[int, int] | None = None
    image: str | None = None
    strength: float | None = None
    control_start: float | None = None
    control_end: float | None = None
    negative_prompt: str | None = None
    guidance: float | None = None
    num_inference_steps: int | None = None
    seed: int | None = None
    loras: tuple[tuple[str, float | None], ...] = ()
    lora_model: str | None = None
    extra_inputs: Mapping[str, Any] = field(default_factory=dict)
    fixed: frozenset[str] = frozenset(
        {"modality", "modality_strength", "num_samples", "guidance", "num_inference_steps", "seed", "width", "height"}
    )


@dataclass(frozen=True)
class MappedBody:
    """The custom body for one model, the notes for the user, and input -> field names for errors."""

    body: dict[str, Any]
    notes: tuple[str, ...] = ()
    params: Mapping[str, str] = field(default_factory=dict)


DEFAULT_LORA_SCALE = 1.0


def derive_size(
    model: DeclaredModel, width: int, height: int, source_size: tuple[int, int] | None
) -> tuple[int | None, int | None]:
    """Width and height for the model: given values kept; 0 derived from ``source_size`` (aspect kept).

    Derived sides are fitted to the declared ``min`` / ``max`` and snapped to
    the declared ``step``. Without a source size, a 0 side takes the declared
    default (``None`` when there is none: Scenario then chooses).
    """
    wd, hd = model.role("width"), model.role("height")
    width, height = int(width or 0), int(height or 0)
    if width > 0 and height > 0:
        return width, height

    def bounds(d: InputDecl | None) -> tuple[float, float, int]:
        lo = d.min if d and d.min is not None else 1.0
        hi = d.max if d and d.max is not None else 4096.0
        step = int(d.step) if d and d.step and d.step >= 1 else 1
        return lo, hi, step

    def snap(v: float, d: InputDecl | None) -> int:
        lo, hi, step = bounds(d)
        lo_s = int(math.ceil(lo / step) * step)
        hi_s = int(math.floor(hi / step) * step)
        return int(min(hi_s, max(lo_s, step * round(v / step))))

    if source_size is None or source_size[0] <= 0 or source_size[1] <= 0:
        dw = int(wd.default) if wd and _num(wd.default) is not None else None
        dh = int(hd.default) if hd and _num(hd.default) is not None else None
        if width == 0 and height == 0:
            return dw, dh
        if width == 0:
            return (snap(height, wd) if dw is None else dw), height
        return width, (snap(width, hd) if dh is None else dh)
    sw, sh = source_size
    if width == 0 and height == 0:
        wlo, whi, _ = bounds(wd)
        hlo, hhi, _ = bounds(hd)
        scale = min(1.0, whi / sw, hhi / sh)
        scale = max(scale, wlo / sw, hlo / sh)
        return snap(sw * scale, wd), snap(sh * scale, hd)
    if width == 0:
        return snap(height * sw / sh, wd), height
    return width, snap(width * sh / sw, hd)


def _err(field_name: str, value: Any, model: DeclaredModel, what: str) -> ValidationError:
    inputs = ", ".join(model.names) or "(none)"
    return ValidationError(
        field_name,
        value,
        f"nothing: model {model.model_id} {what} (its inputs: {inputs})",
        param=field_name,
    )


def _split_modality(text: str) -> list[tuple[str, float | None]]:
    items: list[tuple[str, float | None]] = []
    for raw in text.split(","):
        name, sep, weight = raw.strip().partition(":")
        name = name.strip().lower()
        if not name:
            raise ValidationError("modality", text, "name or name:weight, e.g. 'depth' or 'depth:0.6'")
        w: float | None = None
        if sep:
            try:
                w = float(weight)
            except ValueError:
                raise ValidationError("modality", text, f"a numeric weight after '{name}:'") from None
            if not math.isfinite(w):
                raise ValidationError("modality", text, f"a finite weight after '{name}:'")
        items.append((name, w))
    return items


def map_request(model: DeclaredModel, f: GenericFields) -> MappedBody:
    """The custom body for ``model`` from the generic fields, by the meaning of its declared inputs.

    Raises :class:`ValidationError` for anything the model cannot take (an
    init image for a model without one, LoRAs for a model with no LoRA
    input, an unknown extra input...). The body is not validated here: pass
    it to :func:`validate_body` with ``params``.
    """
    body: dict[str, Any] = {}
    params: dict[str, str] = {}
    notes: list[str] = []

    def put(role: str, value: Any, param: str) -> bool:
        d = model.role(role)
        if d is None:
            return False
        body[d.name] = value
        params[d.name] = param
        return True

    def lacks(param: str, value: Any, what: str) -> None:
        if param in f.fixed:
            notes.append(f"{param} not used by this model ({model.model_id} {what})")
        else:
            raise _err(param, value, model, what)

    if not put("prompt", f.prompt, "prompt"):
        raise _err("prompt", f.prompt, model, "declares no prompt input")

    # the control map and what goes with it
    control = model.role("control_image")
    if f.control_image is not None:
        if control is None:
            raise _err("control_image", f.control_image, model, "declares no control image input")
        body[control.name] = [f.control_image] if control.type == "file_array" else f.control_image
        params[control.name] = "control_image"
    items = _split_modality(f.modality) if isinstance(f.modality, str) and f.modality.strip() else []
    weight = f.modality_strength
    if weight is None and items:
        weight = items[0][1]
    if items and f.control_image is not None:
        md = model.role("modality")
        if md is not None and md.name in (f.extra_inputs or {}):
            pass  # extra_inputs names the modality itself (say a name the node's list lacks): it wins
        elif md is None:
            notes.append(f"modality not used by this model ({model.model_id} declares no modality input)")
        elif md.type == "string_array":
            body[md.name] = [name for name, _ in items]
            params[md.name] = "modality"
        else:
            if len(items) > 1:
                raise ValidationError(
                    "modality",
                    f.modality,
                    f"exactly one modality for model {model.model_id} (its {md.name} input), got {len(items)}",
                    param="modality",
                )
            name = items[0][0]
            if md.allowed_values and name not in md.allowed_values:
                raise ValidationError(
                    "modality",
                    f.modality,
                    f"for model {model.model_id} one of: {', '.join(map(str, md.allowed_values))} "
                    f"('{name}' is not; its {md.name} input)",
                    param="modality",
                )
            body[md.name] = name
            params[md.name] = "modality"
    if f.control_image is not None:
        # how strongly and when the map applies: only sent with a map
        if weight is not None and not put("control_scale", weight, "modality_strength"):
            lacks("modality_strength", weight, "declares no control strength input")
        for param, role, value in (
            ("control_start", "control_start", f.control_start),
            ("control_end", "control_end", f.control_end),
        ):
            if value is not None and not put(role, value, param):
                lacks(param, value, f"declares no {param.replace('_', ' ')} input")

    # init image
    if f.image is None and f.strength is not None:
        raise ValidationError("strength", f.strength, "strength only with an init image (image)", param="strength")
    if f.image is not None:
        if not put("image", f.image, "image"):
            raise _err("image", f.image, model, "declares no init image input (no img2img)")
        if f.strength is not None and not put("strength", f.strength, "strength"):
            notes.append(f"strength not used by this model ({model.model_id} declares no strength input)")

    # numbers with a meaning
    for param, role, value in (
        ("num_samples", "num_outputs", f.num_samples),
        ("num_inference_steps", "steps", f.num_inference_steps),
        ("guidance", "guidance", f.guidance),
        ("seed", "seed", f.seed),
    ):
        d = model.role(role)
        if value is None:
            if d is not None and d.has_default and role != "seed":
                body[d.name] = d.default
                params[d.name] = param
            continue
        if not put(role, value, param):
            lacks(param, value, f"declares no {param.replace('_', ' ')} input")
    if f.negative_prompt:
        if not put("negative_prompt", f.negative_prompt, "negative_prompt"):
            raise _err("negative_prompt", f.negative_prompt, model, "declares no negative prompt input")

    # size
    w, h = derive_size(model, f.width, f.height, f.source_size)
    for param, role, value, given in (("width", "width", w, f.width), ("height", "height", h, f.height)):
        if value is None:
            continue
        if not put(role, value, param) and given:
            lacks(param, given, f"declares no {param} input")

    # LoRAs
    if f.lora_model:
        if not put("lora_model", f.lora_model, "model_id"):
            raise _err("model_id", f.lora_model, model, "takes no LoRA or composition model")
    if f.loras:
        ld, sd = model.role("loras"), model.role("lora_scales")
        if ld is None:
            raise _err("loras", format_loras(f.loras), model, "takes no LoRAs")
        body[ld.name] = [mid for mid, _ in f.loras]
        params[ld.name] = "loras"
        if sd is not None:
            body[sd.name] = [DEFAULT_LORA_SCALE if s is None else s for _, s in f.loras]
            params[sd.name] = "loras"
        elif any(s is not None for _, s in f.loras):
            raise _err("loras", format_loras(f.loras), model, "declares no LoRA scale input")

    # inputs the pack does not know: merged last (they win), names checked by validate_body
    for name, value in (f.extra_inputs or {}).items():
        if name in body and body[name] != value:
            notes.append(f"extra_inputs sets {name} (instead of the node's value)")
        body[name] = value
        params[name] = "extra_inputs"

    # required now and not given: the declared default, when there is one
    kinds = inference_types(model, body)
    for d in model.inputs:
        if d.name not in body and d.has_default and d.required.why(body, kinds) is not None:
            body[d.name] = d.default
    return MappedBody(body=body, notes=tuple(notes), params=params)


# --------------------------------------------------------------------------- text grammars

MAX_LORA_ENTRIES = 32
MAX_LORA_TEXT = 4096
_LORA_ITEM_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]{0,127})(?::([^:]*))?$")


def parse_loras(text: Any, *, field_name: str = "loras") -> tuple[tuple[str, float | None], ...]:
    """``model_id[:scale]`` items, comma separated (spaces and empty items allowed) -> ((id, scale), ...).

    Bounded: at most :data:`MAX_LORA_ENTRIES` entries and :data:`MAX_LORA_TEXT`
    characters (the model's own ``maxLength`` and scale range are checked
    later, against its declared inputs). Raises :class:`ValidationError`.
    """
    if text is None:
        return ()
    if isinstance(text, (list, tuple)):
        out: list[tuple[str, float | None]] = []
        for item in text:
            if isinstance(item, (list, tuple)) and len(item) == 2:  # an (id, scale) pair
                mid, given = item
                shown = mid if given is None else f"{mid}:{given}"
                if given is not None and _num(given) is None:
                    raise ValidationError(field_name, shown, "a number as the LoRA's scale", param=field_name)
                out.extend(
                    (m, None if given is None else float(given))
                    for m, _ in parse_loras(str(mid), field_name=field_name)
                )
            else:
                out.extend(parse_loras(item, field_name=field_name))
        if len(out) > MAX_LORA_ENTRIES:
            raise ValidationError(field_name, f"{len(out)} LoRAs", f"at most {MAX_LORA_ENTRIES}", param=field_name)
        return tuple(out)
    if not isinstance(text, str):
        raise ValidationError(field_name, text, "text like 'model_abc:0.8, model_def'", param=field_name)
    if len(text) > MAX_LORA_TEXT:
        raise ValidationError(
            field_name, f"<{len(text)} characters>", f"at most {MAX_LORA_TEXT} characters", param=field_name
        )
    items: list[tuple[str, float | None]] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        m = _LORA_ITEM_RE.match(":".join(part.strip() for part in item.split(":"))) if item.count(":") <= 1 else None
        if m is None or ".." in m.group(1):
            raise ValidationError(
                field_name,
                item,
                "model_id or model_id:scale, comma separated (e.g. 'model_abc:0.8, model_def')",
                param=field_name,
            )
        scale: float | None = None
        if m.group(2) is not None:
            try:
                scale = float(m.group(2))
            except ValueError:
                scale = None
            if scale is None or not math.isfinite(scale):
                raise ValidationError(
                    field_name, item, f"a number after '{m.group(1)}:' (the LoRA's scale)", param=field_name
                )
        items.append((m.group(1), scale))
        if len(items) > MAX_LORA_ENTRIES:
            raise ValidationError(
                field_name, f"more than {MAX_LORA_ENTRIES} LoRAs", f"at most {MAX_LORA_ENTRIES}", param=field_name
            )
    return tuple(items)


def format_loras(loras: Sequence[tuple[str, float | None]]) -> str:
    """The inverse of :func:`parse_loras` (``id:scale, id``)."""
    return ", ".join(mid if s is None else f"{mid}:{_fmt(s) if s == s else s}" for mid, s in loras)


MAX_EXTRA_TEXT = 65536


def parse_extra_inputs(text: Any, *, field_name: str = "extra_inputs") -> dict[str, Any]:
    """A JSON object of extra inputs (``""`` or ``None`` = none); names must look like input names."""
    if text is None:
        return {}
    if isinstance(text, Mapping):
        data: Any = dict(text)
    elif isinstance(text, str):
        if not text.strip():
            return {}
        if len(text) > MAX_EXTRA_TEXT:
            raise ValidationError(
                field_name, f"<{len(text)} characters>", f"at most {MAX_EXTRA_TEXT} characters", param=field_name
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                field_name, text, f'a JSON object such as {{"guidance": 4}} ({exc.msg})', param=field_name
            ) from None
    else:
        raise ValidationError(field_name, text, 'a JSON object such as {"guidance": 4}', param=field_name)
    if not isinstance(data, dict):
        raise ValidationError(field_name, text, 'a JSON object such as {"guidance": 4}', param=field_name)
    for key in data:
        if not isinstance(key, str) or not _NAME_RE.match(key):
            raise ValidationError(field_name, key, "input names (letters, digits, '_', '.', '-')", param=field_name)
    return data


def parse_assignment(text: str, *, field_name: str = "--input") -> tuple[str, Any]:
    """``NAME=VALUE`` -> (name, value); VALUE is JSON when it parses as JSON, otherwise the string itself."""
    if not isinstance(text, str) or "=" not in text:
        raise ValidationError(
            field_name, text, "NAME=VALUE, e.g. guidance=4 or controlModality=depth", param=field_name
        )
    name, _, raw = text.partition("=")
    name = name.strip()
    if not _NAME_RE.match(name):
        raise ValidationError(field_name, text, "an input name before '=' (letters, digits, '_')", param=field_name)
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return name, value


def collect_assignments(items: Iterable[str], *, field_name: str = "--input") -> dict[str, Any]:
    """Several ``NAME=VALUE`` items as one dict (a repeated name: the last one wins)."""
    out: dict[str, Any] = {}
    for item in items:
        name, value = parse_assignment(item, field_name=field_name)
        out[name] = value
    return out


def _ids_of(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str) and v]
    return [value] if isinstance(value, str) and value else []


def referenced_models(model: DeclaredModel, body: Mapping[str, Any]) -> list[str]:
    """Ids given to the model's ``model`` / ``model_array`` inputs (LoRAs, compositions), in order, unique."""
    ids: dict[str, None] = {}
    for d in model.model_inputs:
        for mid in _ids_of(body.get(d.name)):
            ids.setdefault(mid.strip(), None)
    return list(ids)


def first_violation_response(
    model: DeclaredModel,
    body: Mapping[str, Any],
    model_types: Mapping[str, str | None] | Callable[[str], str | None] | None = None,
) -> tuple[dict[str, Any], Violation | None]:
    """Server side: the normalised body and the first violation (None = valid), as Scenario answers it."""
    types: Mapping[str, str | None] | None
    if callable(model_types):
        lookup = model_types
        raw_refs = referenced_models(model, body if isinstance(body, Mapping) else {})
        types = {mid: lookup(mid) for mid in raw_refs}
    else:
        types = model_types
    out, violations = check_body(model, body, mode=SERVER, model_types=types)
    return out, (violations[0] if violations else None)


# --------------------------------------------------------------------------- helpers for the client, nodes and UI


def assign_loras(
    model: DeclaredModel,
    loras: Sequence[tuple[str, float | None]],
    model_types: Mapping[str, str | None],
    lora_model: str | None = None,
) -> tuple[str | None, tuple[tuple[str, float | None], ...]]:
    """Split a LoRA list into (single model, list) by what each input accepts.

    A composition cannot go in ``loras`` (recorded: ``Allowed model types:
    flux.1-lora``) but the single-model input (``modelId``) takes it: an entry
    whose known type only the single-model input accepts moves there (at most
    one; its own concepts carry the scales, so it takes no scale).
    """
    single, many = model.role("lora_model"), model.role("loras")
    keep: list[tuple[str, float | None]] = []
    for mid, scale in loras:
        kind = model_types.get(mid)
        if (
            kind is not None
            and single is not None
            and kind in single.model_types
            and (many is None or (many.model_types and kind not in many.model_types))
        ):
            if lora_model is not None and lora_model != mid:
                raise ValidationError(
                    "loras",
                    mid,
                    f"at most one {kind} (model {model.model_id} takes a single one, in {single.name}; "
                    f"{lora_model} is already there)",
                    param="loras",
                )
            if scale is not None:
                raise ValidationError(
                    "loras", f"{mid}:{_fmt(scale)}", f"{mid} without a scale: a {kind} carries its own", param="loras"
                )
            lora_model = mid
            continue
        keep.append((mid, scale))
    return lora_model, tuple(keep)


def fields_from_request(
    request: Any,
    *,
    source_size: tuple[int, int] | None = None,
    control_image: str | None = None,
    image: str | None = None,
    lora_model: str | None = None,
    loras: Sequence[tuple[str, float | None]] | None = None,
) -> GenericFields:
    """:class:`GenericFields` from a ``ControlNetRequest``-like object (read by attribute name).

    ``control_image`` / ``image`` override the request's (an asset id, or a
    placeholder for a validation draft). ``loras`` defaults to the request's
    ``loras`` attribute (text or pairs); extra inputs come from its
    ``extra_inputs`` attribute when it has one.
    """

    def attr(name: str) -> Any:
        return getattr(request, name, None)

    given_loras = loras if loras is not None else parse_loras(attr("loras"))
    extra = attr("extra_inputs")
    return GenericFields(
        prompt=attr("prompt") or "",
        control_image=control_image
        if control_image is not None
        else (attr("control_image_id") if attr("control_image_id") is not None else attr("control_image")),
        modality=attr("modality"),
        modality_strength=attr("modality_strength"),
        num_samples=attr("num_samples"),
        width=int(attr("width") or 0),
        height=int(attr("height") or 0),
        source_size=source_size,
        image=image if image is not None else attr("image"),
        strength=attr("strength"),
        control_start=attr("control_start"),
        control_end=attr("control_end"),
        negative_prompt=attr("negative_prompt") or None,
        guidance=attr("guidance"),
        num_inference_steps=attr("num_inference_steps"),
        seed=attr("seed"),
        loras=tuple(given_loras),
        lora_model=lora_model,
        extra_inputs=parse_extra_inputs(extra) if extra is not None else {},
    )


# The legacy endpoints' price depends on these widgets (see emulator pricing and Scenario's quotes).
LEGACY_PRICE_INPUTS = ("model_id", "num_samples", "num_inference_steps", "width", "height")
# Which node widget feeds each role (for the frontend: re-quote when one of them changes).
WIDGET_OF_ROLE = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "control_image": "control_image",
    "modality": "modality",
    "control_scale": "modality_strength",
    "control_start": "control_start",
    "control_end": "control_end",
    "image": "image",
    "strength": "strength",
    "num_outputs": "num_samples",
    "steps": "num_inference_steps",
    "guidance": "guidance",
    "seed": "seed",
    "width": "width",
    "height": "height",
    "loras": "loras",
    "lora_scales": "loras",
    "lora_model": "loras",
}


def price_widgets(model: DeclaredModel) -> tuple[str, ...]:
    """Node widgets whose change can change the price of a custom model (its ``costImpact`` inputs)."""
    roles = {v: k for k, v in model.role_map().items() if v}
    out: dict[str, None] = {"model_id": None}
    for name in model.cost_impact_inputs:
        out.setdefault(WIDGET_OF_ROLE.get(roles.get(name, ""), "extra_inputs"), None)
    return tuple(out)


def model_summary(model: DeclaredModel) -> dict[str, Any]:
    """What the frontend needs about a custom model, as JSON: roles, inputs, limits and price inputs.

    ``roles`` maps meanings to the model's input names (``null`` = the model
    has none: e.g. ``modality`` on Z-Image); ``price_inputs`` are the declared
    ``costImpact`` inputs and ``price_widgets`` the node widgets feeding them.
    """
    roles = model.role_map()
    modality = model.role("modality")
    scale = model.role("lora_scales")
    loras = model.role("loras")
    size = {}
    for side in ("width", "height"):
        d = model.role(side)
        if d is not None:
            size[side] = {"input": d.name, "min": d.min, "max": d.max, "step": d.step, "default": d.default}
    unused = [
        WIDGET_OF_ROLE[r]
        for r in ("modality", "control_scale", "control_start", "control_end", "negative_prompt")
        if roles.get(r) is None
    ]
    return {
        "model_id": model.model_id,
        "roles": roles,
        "inputs": describe_inputs(model),
        "modalities": list(modality.allowed_values or ()) if modality else [],
        "size": size,
        "presets": [
            {"label": label, "width": w, "height": h}
            for label, w, h in (model.resolution.presets if model.resolution else ())
        ],
        "loras": None
        if loras is None
        else {
            "input": loras.name,
            "max_items": loras.max_length,
            "model_types": list(loras.model_types),
            "scale_min": scale.min if scale else None,
            "scale_max": scale.max if scale else None,
            "single_input": roles.get("lora_model"),
        },
        "price_inputs": list(model.cost_impact_inputs),
        "price_widgets": list(price_widgets(model)),
        "unused_widgets": unused,
    }


CONTROLNET_CAPABILITY = "controlnet"


def can_do_controlnet(row: Mapping[str, Any]) -> bool:
    """A model row (list or record) that can run ControlNet: bases, LoRAs and compositions alike."""
    caps = row.get("capabilities") if isinstance(row, Mapping) else None
    return isinstance(caps, (list, tuple)) and CONTROLNET_CAPABILITY in caps


class RecordCache:
    """Process-wide model records with a time-to-live, keyed by (account scope, model id).

    Thread-safe and loop-free (a plain lock, no asyncio objects), so it can
    live in a module global across ComfyUI prompts, each of which runs its own
    event loop. The scope keeps one account's private models from another's.
    """

    def __init__(self, ttl: float = 600.0, max_entries: int = 512, clock: Callable[[], float] | None = None) -> None:
        import threading
        import time

        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._data: dict[tuple[str, str], tuple[float, Any]] = {}

    def get(self, scope: str, model_id: str) -> Any | None:
        with self._lock:
            hit = self._data.get((scope, model_id))
            if hit is None:
                return None
            if self._clock() - hit[0] > self.ttl:
                self._data.pop((scope, model_id), None)
                return None
            return hit[1]

    def put(self, scope: str, model_id: str, value: Any) -> None:
        with self._lock:
            if len(self._data) >= self.max_entries:
                oldest = min(self._data, key=lambda k: self._data[k][0])
                self._data.pop(oldest, None)
            self._data[(scope, model_id)] = (self._clock(), value)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def node_table(models: Sequence[DeclaredModel]) -> str:
    """A Markdown table: each generate-node input against the input each model declares for it."""
    rows = [
        ("control_image / control_image_id", "control_image"),
        ("modality", "modality"),
        ("modality_strength", "control_scale"),
        ("control_start", "control_start"),
        ("control_end", "control_end"),
        ("num_samples", "num_outputs"),
        ("num_inference_steps", "steps"),
        ("guidance", "guidance"),
        ("width", "width"),
        ("height", "height"),
        ("seed", "seed"),
        ("negative_prompt", "negative_prompt"),
        ("image / image_id", "image"),
        ("strength", "strength"),
        ("loras (LoRA ids)", "loras"),
        ("loras (scales)", "lora_scales"),
        ("loras (a composition) / LoRA as model_id", "lora_model"),
    ]
    head = "| Node input | " + " | ".join(f"`{m.model_id}`" for m in models) + " |"
    sep = "|---|" + "---|" * len(models)
    lines = [head, sep]
    for label, role in rows:
        cells = []
        for m in models:
            d = m.role(role)
            if d is None:
                cells.append("not used" if role in ("modality",) else "-")
            else:
                extra = " (one-item array)" if d.type == "file_array" else ""
                cells.append(f"`{d.name}` {d.type}{extra}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
