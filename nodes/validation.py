"""Widget checks that need no model, no tensor and no network.

Used twice: by ``VALIDATE_INPUTS`` (ComfyUI runs it before anything executes,
with constant widget values only; a widget converted to a linked input
arrives as ``None`` and is skipped) and again at the top of ``FUNCTION``,
where linked values (e.g. an asset id from Scenario Upload Asset) are known.
The price-quote route (``web_api``) runs them on the widget values too.

Declaring an input in ``VALIDATE_INPUTS`` makes ComfyUI skip its own
min/max/combo check for that input, so every declared input is fully
checked here. Family-specific rules (which modalities a Flux model accepts,
SDXL's 512 px minimum...) need the model and are checked right after the
model lookup (see ``generate``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..scenario_api import spec
from ..scenario_api.errors import ValidationError
from .errors import prefixed
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
    raise ValidationError(
        "modalities", value, "a combination some model family accepts (" + "; ".join(reasons) + ")", param="modalities"
    )


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
            raise ValidationError(
                name, value, "-1 (Scenario's default, not sent) or a fraction from 0 to 1", param=name
            )
    both_set = control_start not in (None, UNSET) and control_end not in (None, UNSET)
    if both_set and float(control_start) >= float(control_end):
        raise ValidationError(
            "control_start", control_start, f"a value below control_end ({control_end})", param="control_start"
        )


def check_asset_ids(name: str, value: Any) -> None:
    if value is not None and str(value).strip():
        parse_ids(value, "asset", name, required=False)


def check_prompt(prompt: Any) -> None:
    """A prompt with some text (a linked prompt arrives as ``None`` and is checked when the node runs)."""
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise ValidationError("prompt", prompt, "a non-empty text prompt", param="prompt")


# The one list of widget rules: (widget names, check). ``VALIDATE_INPUTS``
# takes exactly these names, ``widget_errors`` runs exactly these checks.
_RULES: tuple[tuple[tuple[str, ...], Callable[..., None]], ...] = (
    (("prompt",), check_prompt),
    (("model_id",), check_model_id),
    (("modality",), check_modality_choice),
    (("modalities",), check_modalities),
    (("width",), lambda v: check_size("width", v)),
    (("height",), lambda v: check_size("height", v)),
    (("control_start", "control_end"), check_control_window),
    (("control_image_id",), lambda v: check_asset_ids("control_image_id", v)),
    (("image_id",), lambda v: check_asset_ids("image_id", v)),
)
WIDGET_NAMES: tuple[str, ...] = tuple(name for names, _ in _RULES for name in names)


def widget_errors(**values: Any) -> list[ValidationError]:
    """Every widget-only rule; returns all problems, so one validation pass reports them all.

    Keyword arguments are widget names from :data:`WIDGET_NAMES`; a missing
    or ``None`` value (a linked input) is not checked.
    """
    unknown = set(values) - set(WIDGET_NAMES)
    if unknown:
        raise TypeError(f"not a checked widget: {', '.join(sorted(unknown))}")
    found: list[ValidationError] = []
    for names, check in _RULES:
        try:
            check(*(values.get(name) for name in names))
        except ValidationError as exc:
            found.append(exc)
    return found


def check_widgets(**values: Any) -> None:
    """Raise the first problem :func:`widget_errors` finds (used at the top of ``FUNCTION``)."""
    found = widget_errors(**values)
    if found:
        raise found[0]


def validate_inputs_method() -> classmethod:
    """A ``VALIDATE_INPUTS`` classmethod taking exactly :data:`WIDGET_NAMES`.

    ComfyUI reads the method's argument names (``inspect.getfullargspec``) to
    choose which inputs it passes, and skips its own min/max/combo check for
    those inputs; a ``**kwargs`` would switch that check off for *every*
    input. So the method gets an explicit signature, built from the rule list
    above instead of being written out a second time. The answer is ``True``
    or one text listing every problem (ComfyUI repeats it once per input).
    """

    def VALIDATE_INPUTS(cls: type, **values: Any) -> bool | str:
        found = widget_errors(**values)
        return prefixed(" | ".join(str(e) for e in found)) if found else True

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter("cls", kind)] + [inspect.Parameter(n, kind, default=None) for n in WIDGET_NAMES]
    signature = inspect.Signature(params, return_annotation="bool | str")
    VALIDATE_INPUTS.__signature__ = signature  # type: ignore[attr-defined]
    VALIDATE_INPUTS.__doc__ = "Constant widget values only (ComfyUI passes ``None`` for linked inputs)."
    return classmethod(VALIDATE_INPUTS)
