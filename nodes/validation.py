"""Widget checks that need no model, no tensor and no network.

Used twice: by ``VALIDATE_INPUTS`` (ComfyUI runs it before anything executes,
with constant widget values only; a widget converted to a linked input
arrives as ``None`` and is skipped) and again at the top of ``FUNCTION``,
where linked values (e.g. an asset id from Scenario Upload Asset) are known.

Declaring an input in ``VALIDATE_INPUTS`` makes ComfyUI skip its own
min/max/combo check for that input, so every declared input is fully
checked here. Family-specific rules (which modalities a Flux model accepts,
SDXL's 512 px minimum...) need the model and are checked by the client
before it submits.
"""

from __future__ import annotations

from typing import Any

from ..scenario_api import spec
from ..scenario_api.errors import ValidationError
from .ids import parse_ids
from .inputs import UNSET

_FAMILIES = (spec.FLUX, spec.SDXL, spec.SD15)


def check_model_id(model_id: Any) -> None:
    if model_id is not None:
        spec.check_id("modelId", model_id, "model_id")


def check_modality_choice(modality: Any) -> None:
    if modality is not None and modality not in spec.ALL_MODALITY_NAMES:
        raise ValidationError("modality", modality, "one of: " + ", ".join(spec.ALL_MODALITY_NAMES), param="modality")


def check_modalities(modalities: Any) -> None:
    """The advanced override: full grammar, and valid for at least one model family."""
    if modalities is None or not str(modalities).strip():
        return
    value = str(modalities)
    try:
        items = spec.parse_modality(value, strict=True)
    except ValidationError as exc:
        raise ValidationError("modalities", value, exc.allowed, param="modalities") from None
    unknown = [i.name for i in items if i.name not in spec.ALL_MODALITY_NAMES]
    if unknown:
        raise ValidationError(
            "modalities", value, "names among: " + ", ".join(spec.ALL_MODALITY_NAMES), param="modalities"
        )
    reasons = []
    for family in _FAMILIES:
        try:
            spec.validate_modality(value, family, strict=True)
            return
        except ValidationError as exc:
            reasons.append(f"{spec.family_label(family)}: {exc.allowed}")
    raise ValidationError("modalities", value, "a combination some model family accepts (" + "; ".join(reasons) + ")", param="modalities")


def check_size(name: str, value: Any) -> None:
    """0 (derive from the control image) or 64-2048 in steps of 8."""
    if value is None:
        return
    lo, hi = spec.size_range(name, spec.FLUX)
    allowed = f"0 (derive from the control image) or {lo}-{hi} in steps of 8 (the model may narrow this)"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        raise ValidationError(name, value, allowed, param=name)
    v = int(value)
    if v == 0:
        return
    if v < lo or v > hi or v % 8:
        raise ValidationError(name, value, allowed, param=name)


def check_control_window(control_start: Any, control_end: Any) -> None:
    """-1 = not sent; otherwise 0..1, and start below end when both are set."""
    for name, value in (("control_start", control_start), ("control_end", control_end)):
        if value is None or value == UNSET:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= float(value) <= 1.0):
            raise ValidationError(name, value, "-1 (Scenario's default, not sent) or a fraction from 0 to 1", param=name)
    both_set = control_start not in (None, UNSET) and control_end not in (None, UNSET)
    if both_set and float(control_start) >= float(control_end):
        raise ValidationError(
            "control_start", control_start, f"a value below control_end ({control_end})", param="control_start"
        )


def check_asset_ids(name: str, value: Any) -> None:
    if value is not None and str(value).strip():
        parse_ids(value, "asset", name, required=False)


def widget_errors(
    *,
    model_id: Any = None,
    modality: Any = None,
    modalities: Any = None,
    width: Any = None,
    height: Any = None,
    control_start: Any = None,
    control_end: Any = None,
    control_image_id: Any = None,
    image_id: Any = None,
) -> list[ValidationError]:
    """Every widget-only rule; returns all problems, so one validation pass reports them all."""
    checks = (
        lambda: check_model_id(model_id),
        lambda: check_modality_choice(modality),
        lambda: check_modalities(modalities),
        lambda: check_size("width", width),
        lambda: check_size("height", height),
        lambda: check_control_window(control_start, control_end),
        lambda: check_asset_ids("control_image_id", control_image_id),
        lambda: check_asset_ids("image_id", image_id),
    )
    found: list[ValidationError] = []
    for check in checks:
        try:
            check()
        except ValidationError as exc:
            found.append(exc)
    return found


def check_widgets(**values: Any) -> None:
    """Raise the first problem :func:`widget_errors` finds (used at the top of ``FUNCTION``)."""
    found = widget_errors(**values)
    if found:
        raise found[0]
