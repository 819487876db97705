"""The mapping by meaning: the pack's generic fields onto whatever inputs a model declares.

The generate nodes and the CLI know a control map, a modality, strengths,
samples, a size, an init image, LoRAs and extra inputs; :func:`map_request`
finds the input that plays each role (:meth:`DeclaredModel.role`) and builds
the custom body, with notes for widgets the model does not use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from .grammars import format_loras, parse_extra_inputs, parse_loras
from .model import DeclaredModel, inference_types
from .schema import InputDecl, fmt, num


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
        dw = int(wd.default) if wd and num(wd.default) is not None else None
        dh = int(hd.default) if hd and num(hd.default) is not None else None
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


class _BodyBuilder:
    """The body being built for one model: inputs set by role, the field each came from, and the notes."""

    def __init__(self, model: DeclaredModel, f: GenericFields) -> None:
        self.model = model
        self.f = f
        self.body: dict[str, Any] = {}
        self.params: dict[str, str] = {}
        self.notes: list[str] = []

    def set(self, name: str, value: Any, param: str) -> None:
        self.body[name] = value
        self.params[name] = param

    def put(self, role: str, value: Any, param: str) -> bool:
        """Set the input playing ``role``; False when the model declares none."""
        d = self.model.role(role)
        if d is None:
            return False
        self.set(d.name, value, param)
        return True

    def lacks(self, param: str, value: Any, what: str) -> None:
        """The model has no input for ``param``: a note for an always-present widget, else an error."""
        if param in self.f.fixed:
            self.notes.append(f"{param} not used by this model ({self.model.model_id} {what})")
        else:
            raise _err(param, value, self.model, what)

    def put_or_lack(self, role: str, value: Any, param: str) -> None:
        if value is not None and not self.put(role, value, param):
            self.lacks(param, value, f"declares no {param.replace('_', ' ')} input")

    def result(self) -> MappedBody:
        return MappedBody(body=self.body, notes=tuple(self.notes), params=self.params)


def map_request(model: DeclaredModel, f: GenericFields) -> MappedBody:
    """The custom body for ``model`` from the generic fields, by the meaning of its declared inputs.

    Raises :class:`ValidationError` for anything the model cannot take (an
    init image for a model without one, LoRAs for a model with no LoRA
    input, an unknown extra input...). The body is not validated here: pass
    it to :func:`validate_body` with ``params``.
    """
    b = _BodyBuilder(model, f)
    if not b.put("prompt", f.prompt, "prompt"):
        raise _err("prompt", f.prompt, model, "declares no prompt input")
    _map_control(b)
    _map_init_image(b)
    _map_numbers(b)
    if f.negative_prompt and not b.put("negative_prompt", f.negative_prompt, "negative_prompt"):
        raise _err("negative_prompt", f.negative_prompt, model, "declares no negative prompt input")
    _map_size(b)
    _map_loras(b)
    _map_extra_inputs(b)
    _fill_required_defaults(b)
    return b.result()


def _map_control(b: _BodyBuilder) -> None:
    """The control map and what goes with it: modality, then how strongly and when it applies (only with a map)."""
    model, f = b.model, b.f
    control = model.role("control_image")
    if f.control_image is not None:
        if control is None:
            raise _err("control_image", f.control_image, model, "declares no control image input")
        b.set(control.name, [f.control_image] if control.type == "file_array" else f.control_image, "control_image")
    items = _split_modality(f.modality) if isinstance(f.modality, str) and f.modality.strip() else []
    weight = f.modality_strength
    if weight is None and items:
        weight = items[0][1]
    if f.control_image is None:
        return
    if items:
        _map_modality(b, items)
    if weight is not None and not b.put("control_scale", weight, "modality_strength"):
        b.lacks("modality_strength", weight, "declares no control strength input")
    b.put_or_lack("control_start", f.control_start, "control_start")
    b.put_or_lack("control_end", f.control_end, "control_end")


def _map_modality(b: _BodyBuilder, items: list[tuple[str, float | None]]) -> None:
    """The modality names, as a list or as one of the declared values."""
    model, f = b.model, b.f
    md = model.role("modality")
    if md is not None and md.name in (f.extra_inputs or {}):
        return  # extra_inputs names the modality itself (say a name the node's list lacks): it wins
    if md is None:
        b.notes.append(f"modality not used by this model ({model.model_id} declares no modality input)")
        return
    if md.type == "string_array":
        b.set(md.name, [name for name, _ in items], "modality")
        return
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
    b.set(md.name, name, "modality")


def _map_init_image(b: _BodyBuilder) -> None:
    model, f = b.model, b.f
    if f.image is None and f.strength is not None:
        raise ValidationError("strength", f.strength, "strength only with an init image (image)", param="strength")
    if f.image is None:
        return
    if not b.put("image", f.image, "image"):
        raise _err("image", f.image, model, "declares no init image input (no img2img)")
    if f.strength is not None and not b.put("strength", f.strength, "strength"):
        b.notes.append(f"strength not used by this model ({model.model_id} declares no strength input)")


def _map_numbers(b: _BodyBuilder) -> None:
    """Numbers with a meaning; one not given takes the declared default (never for the seed)."""
    f = b.f
    for param, role, value in (
        ("num_samples", "num_outputs", f.num_samples),
        ("num_inference_steps", "steps", f.num_inference_steps),
        ("guidance", "guidance", f.guidance),
        ("seed", "seed", f.seed),
    ):
        d = b.model.role(role)
        if value is None:
            if d is not None and d.has_default and role != "seed":
                b.set(d.name, d.default, param)
            continue
        b.put_or_lack(role, value, param)


def _map_size(b: _BodyBuilder) -> None:
    f = b.f
    w, h = derive_size(b.model, f.width, f.height, f.source_size)
    for side, value, given in (("width", w, f.width), ("height", h, f.height)):
        if value is None:
            continue
        if not b.put(side, value, side) and given:
            b.lacks(side, given, f"declares no {side} input")


def _map_loras(b: _BodyBuilder) -> None:
    """A LoRA or composition given as the model, then the LoRA list and its scales."""
    model, f = b.model, b.f
    if f.lora_model and not b.put("lora_model", f.lora_model, "model_id"):
        raise _err("model_id", f.lora_model, model, "takes no LoRA or composition model")
    if not f.loras:
        return
    ld, sd = model.role("loras"), model.role("lora_scales")
    if ld is None:
        raise _err("loras", format_loras(f.loras), model, "takes no LoRAs")
    b.set(ld.name, [mid for mid, _ in f.loras], "loras")
    if sd is not None:
        b.set(sd.name, [DEFAULT_LORA_SCALE if s is None else s for _, s in f.loras], "loras")
    elif any(s is not None for _, s in f.loras):
        raise _err("loras", format_loras(f.loras), model, "declares no LoRA scale input")


def _map_extra_inputs(b: _BodyBuilder) -> None:
    """Inputs the pack does not know: merged last (they win), names checked by validate_body."""
    for name, value in (b.f.extra_inputs or {}).items():
        if name in b.body and b.body[name] != value:
            b.notes.append(f"extra_inputs sets {name} (instead of the node's value)")
        b.set(name, value, "extra_inputs")


def _fill_required_defaults(b: _BodyBuilder) -> None:
    """Required now and not given: the declared default, when there is one (no param: not from a field)."""
    kinds = inference_types(b.model, b.body)
    for d in b.model.inputs:
        if d.name not in b.body and d.has_default and d.required.why(b.body, kinds) is not None:
            b.body[d.name] = d.default


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
                    "loras", f"{mid}:{fmt(scale)}", f"{mid} without a scale: a {kind} carries its own", param="loras"
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
