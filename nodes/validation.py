"""Widget checks that need no model, no tensor and no network.

Used twice: by ``VALIDATE_INPUTS`` (ComfyUI runs it before anything executes,
with constant widget values only; a widget converted to a linked input
arrives as ``None`` and is skipped) and again when the node runs (through
:func:`nodes.request_builder.build_request`), where linked values (e.g. an
asset id from Scenario Upload Asset) are known. The price-quote route
(``web_api``) runs them on the widget values too.

Every rule here is one of ``scenario_api.spec``'s model-independent rules
(:func:`spec.check_field`), applied to the widget's value, so a widget and the
client say the same thing about the same value. Only the widgets' own
conventions are added: 0 for width/height (derive from the control image),
-1 for control_start/control_end (Scenario's default, not sent), the combos of
modality names and init-image formats, id lists.

Declaring an input in ``VALIDATE_INPUTS`` makes ComfyUI skip its own
min/max/combo check for that input, so every declared input is fully
checked here. Family-specific rules (which modalities a Flux model accepts,
SDXL's 512 px minimum...) need the model and are checked right after the
model lookup (``spec.check_request``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..scenario_api import declared_inputs, spec
from ..scenario_api.errors import ValidationError
from .errors import prefixed
from .ids import parse_ids
from .inputs import INIT_FORMAT_WIDGET, INIT_IMAGE_FORMATS, UNSET


def spec_rule(widget: str) -> Callable[[Any], None]:
    """The spec rule of the wire field behind ``widget`` (named like its Python parameter)."""
    field = spec.PARAM_TO_WIRE[widget]

    def check(value: Any) -> None:
        if value is not None:
            spec.check_field(field, value)

    return check


def check_modality_choice(modality: Any) -> None:
    if modality is not None and modality not in spec.ALL_MODALITY_NAMES:
        raise ValidationError("modality", modality, "one of: " + ", ".join(spec.ALL_MODALITY_NAMES), param="modality")


def check_modalities(modalities: Any) -> None:
    """The advanced override: spec's modality rule (some family accepts it), named ``modalities``."""
    if modalities is None or not str(modalities).strip():
        return
    value = str(modalities)
    try:
        spec.check_field("modality", value)
    except ValidationError as exc:
        raise ValidationError("modalities", value, exc.allowed, param="modalities") from None


def _is_zero(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == 0


def size_rule(widget: str) -> Callable[[Any], None]:
    """0 = derive from the control image; any other value is checked by spec's size rule."""
    rule = spec_rule(widget)

    def check(value: Any) -> None:
        if not _is_zero(value):
            rule(value)

    return check


def _is_unset(value: Any) -> bool:
    return value is None or (not isinstance(value, bool) and value == UNSET)


def check_control_window(control_start: Any, control_end: Any) -> None:
    """-1 = not sent; otherwise spec's rules: each a fraction, and start below end when both are set."""
    start = None if _is_unset(control_start) else spec.check_field("controlStart", control_start)
    end = None if _is_unset(control_end) else spec.check_field("controlEnd", control_end)
    spec.check_window(start, end)


def check_loras(value: Any) -> None:
    """The ``model_id[:scale], ...`` grammar (the model's own limits are checked once it is known)."""
    if value is not None and str(value).strip():
        declared_inputs.parse_loras(value)


def check_extra_inputs(value: Any) -> None:
    """A JSON object of input names (checked against the model's declared inputs once it is known)."""
    if value is not None and str(value).strip():
        declared_inputs.parse_extra_inputs(value)


def check_init_image_format(value: Any) -> None:
    """Img2img: one of the combo's choices (each names a format and its quality)."""
    if value is not None and value not in INIT_IMAGE_FORMATS:
        raise ValidationError(
            INIT_FORMAT_WIDGET, value, "one of: " + ", ".join(INIT_IMAGE_FORMATS), param=INIT_FORMAT_WIDGET
        )


def check_asset_ids(name: str, value: Any) -> None:
    if value is not None and str(value).strip():
        parse_ids(value, "asset", name, required=False)


# The one list of widget rules: (widget names, check). ``VALIDATE_INPUTS``
# takes exactly these names, ``widget_errors`` runs exactly these checks.
_RULES: tuple[tuple[tuple[str, ...], Callable[..., None]], ...] = (
    (("prompt",), spec_rule("prompt")),
    (("model_id",), spec_rule("model_id")),
    (("modality",), check_modality_choice),
    (("modalities",), check_modalities),
    (("width",), size_rule("width")),
    (("height",), size_rule("height")),
    (("control_start", "control_end"), check_control_window),
    (("control_image_id",), lambda v: check_asset_ids("control_image_id", v)),
    (("image_id",), lambda v: check_asset_ids("image_id", v)),
    (("loras",), check_loras),
    (("extra_inputs",), check_extra_inputs),
    ((INIT_FORMAT_WIDGET,), check_init_image_format),
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
    """Raise the first problem :func:`widget_errors` finds (used when the node runs)."""
    found = widget_errors(**values)
    if found:
        raise found[0]


def validate_inputs_method() -> classmethod[Any, ..., bool | str]:
    """A ``VALIDATE_INPUTS`` classmethod taking exactly :data:`WIDGET_NAMES`.

    ComfyUI reads the method's argument names (``inspect.getfullargspec``) to
    choose which inputs it passes, and skips its own min/max/combo check for
    those inputs; a ``**kwargs`` would switch that check off for *every*
    input. So the method gets an explicit signature, built from the rule list
    above instead of being written out a second time. The answer is ``True``
    or one text listing every problem (ComfyUI repeats it once per input).
    """

    def VALIDATE_INPUTS(cls: type[Any], /, **values: Any) -> bool | str:
        found = widget_errors(**values)
        return prefixed(" | ".join(str(e) for e in found)) if found else True

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter("cls", kind)] + [inspect.Parameter(n, kind, default=None) for n in WIDGET_NAMES]
    signature = inspect.Signature(params, return_annotation="bool | str")
    VALIDATE_INPUTS.__signature__ = signature  # type: ignore[attr-defined]
    VALIDATE_INPUTS.__doc__ = "Constant widget values only (ComfyUI passes ``None`` for linked inputs)."
    return classmethod(VALIDATE_INPUTS)
