"""A model's declarations as a whole (:class:`DeclaredModel`) and the roles its inputs play, found by meaning.

Roles (``prompt``, ``control_image``, ``num_outputs``, ``loras``...) are found
by declared type, kind, group, ``uiConfig`` and name patterns, never by model id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .schema import MISSING, InputDecl, LorasComponent, ResolutionComponent, defined, num, parse_inputs


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
                    w, h = num(p.get("width")), num(p.get("height"))
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
        candidates = self._role_candidates(role)
        for pattern in _ROLE_NAMES[role]:
            rx = re.compile(pattern, re.I)
            for d in candidates:
                if rx.fullmatch(d.name):
                    return d.name
        return _role_by_group(role, candidates)

    def _role_candidates(self, role: str) -> list[InputDecl]:
        """The inputs of the right type for ``role``, without those that clearly mean something else."""
        candidates = [d for d in self.inputs if d.type in _ROLE_TYPES[role]]
        if role in ("prompt", "negative_prompt"):
            negative = [d for d in candidates if "negative" in d.name.lower()]
            if role == "negative_prompt":
                return negative
            return [d for d in candidates if d not in negative]
        if role == "image":
            return [d for d in candidates if not _looks_control(d) and "mask" not in d.name.lower()]
        if role in ("strength", "num_outputs", "steps", "guidance", "seed", "width", "height"):
            return [d for d in candidates if not _looks_control(d)]
        return candidates

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

    def input_roles(self) -> dict[str, str]:
        """Declared input name -> the role it plays (inputs that play none are absent)."""
        return {v: k for k, v in self.role_map().items() if v}


def _looks_control(d: InputDecl) -> bool:
    return (
        "control" in d.name.lower()
        or "conditioning" in d.name.lower()
        or bool(d.group and "control" in d.group.lower())
    )


def _role_by_group(role: str, candidates: list[InputDecl]) -> str | None:
    """No name matched: a ControlNet group's input, or a prompt by its ``...prompt`` suffix."""
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


def inference_types(model: DeclaredModel, body: Mapping[str, Any]) -> tuple[str, ...]:
    """What kind of generation ``body`` asks for: ``controlnet`` and/or ``img2img``, else ``txt2img``."""
    kinds = []
    control, image = model.role("control_image"), model.role("image")
    if control is not None and defined(body.get(control.name, MISSING)):
        kinds.append("controlnet")
    if image is not None and defined(body.get(image.name, MISSING)):
        kinds.append("img2img")
    return tuple(kinds) or ("txt2img",)


def cost_inputs(model: DeclaredModel) -> tuple[str, ...]:
    """The inputs whose change can change the price (``costImpact: true``)."""
    return model.cost_impact_inputs


def describe_inputs(model: DeclaredModel) -> list[dict[str, Any]]:
    """A JSON-friendly summary of the declared inputs (name, type, what is allowed, default, role)."""
    roles = model.input_roles()
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
