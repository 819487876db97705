"""The one widget -> :class:`ControlNetRequest` builder.

The generate nodes and the price-quote route (``web_api``) turn widget values
into a request here and nowhere else, so a quote prices exactly what the node
would send. Adding a widget that feeds the request means: declare it (in
``inputs``) and map it here (:data:`REQUEST_WIDGETS`); the node's ``FUNCTION``
and the route pass every widget value through unchanged.

The widgets' own conventions are undone here: ``scheduler`` "default",
``control_start``/``control_end`` -1, an empty negative prompt and a size of 0
are "not sent" (``None``); ``modality`` + ``modality_strength`` or the
``modalities`` override become one modality string. Values are otherwise
passed as they are: ``scenario_api.spec`` checks and types them, naming the
widget when one is wrong.

Images are not built here: the node gets them from its IMAGE inputs or asset
ids (``plan.sources``), the route from a placeholder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..scenario_api import declared_inputs, spec
from ..scenario_api.errors import ValidationError
from ..scenario_api.models import ControlNetRequest
from .inputs import DEFAULT_MODALITY, INIT_FORMAT_WIDGET, SCHEDULER_DEFAULT, UNSET
from .validation import WIDGET_NAMES, check_widgets


def _as_is(value: Any) -> Any:
    return value


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _given(value: Any) -> Any:
    """``None`` for a missing or empty value (a route payload may leave a widget out)."""
    return None if value is None or value == "" else value


def _text(value: Any) -> Any:
    return value or None


def _size(value: Any) -> Any:
    """0 = derive from the control image: not part of the base request."""
    value = _given(value)
    return None if value is not None and not isinstance(value, bool) and value == 0 else value


def _fraction(value: Any) -> Any:
    """-1 = Scenario's default: not sent."""
    value = _given(value)
    return None if value is not None and not isinstance(value, bool) and value == UNSET else value


def _scheduler(value: Any) -> Any:
    return None if value in (None, "", SCHEDULER_DEFAULT) else value


def _loras(value: Any) -> Any:
    """``model_id[:scale], ...`` -> ((id, scale), ...); empty = none."""
    pairs = declared_inputs.parse_loras(_given(value))
    return pairs or None


def _extra_inputs(value: Any) -> Any:
    """A JSON object -> dict; empty = none."""
    return declared_inputs.parse_extra_inputs(_given(value)) or None


# Widget -> (request field, how the widget's value becomes the field's value).
REQUEST_WIDGETS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "prompt": ("prompt", _as_is),
    "model_id": ("model_id", _stripped),
    "num_samples": ("num_samples", _given),
    "guidance": ("guidance", _given),
    "num_inference_steps": ("num_inference_steps", _given),
    "width": ("width", _size),
    "height": ("height", _size),
    "seed": ("seed", _given),
    "negative_prompt": ("negative_prompt", _text),
    "scheduler": ("scheduler", _scheduler),
    "control_start": ("control_start", _fraction),
    "control_end": ("control_end", _fraction),
    "loras": ("loras", _loras),
    "extra_inputs": ("extra_inputs", _extra_inputs),
}
# Widgets combined into one field: the modality string, and strength (img2img only).
MODALITY_WIDGETS = ("modality", "modality_strength", "modalities")
STRENGTH_WIDGET = "strength"
# Widgets the builder reads but that are not request fields: the images, the budget, and how init pixels
# are encoded for upload (img2img; checked here, used by the node's upload).
SOURCE_WIDGETS = ("control_image", "control_image_id", "image", "image_id")
BUDGET_WIDGET = "max_creative_units"
UPLOAD_WIDGETS = (INIT_FORMAT_WIDGET,)
WIDGETS: frozenset[str] = frozenset(
    (*REQUEST_WIDGETS, *MODALITY_WIDGETS, STRENGTH_WIDGET, *SOURCE_WIDGETS, BUDGET_WIDGET, *UPLOAD_WIDGETS)
)


def modality_string(modality: Any, strength: Any, modalities: Any) -> str:
    """The modality sent to Scenario.

    A non-empty ``modalities`` (the full grammar) wins; otherwise
    ``modality:modality_strength`` with the strength checked here against
    spec's weight range, so a bad value is named ``modality_strength``
    rather than ``modality``. A missing strength (``None``) means 1.
    """
    if isinstance(modalities, str) and modalities.strip():
        return modalities.strip()
    if strength is None:
        strength = 1.0
    if (
        isinstance(strength, bool)
        or not isinstance(strength, (int, float))
        or not (spec.WEIGHT_MIN_EXCLUSIVE < float(strength) <= spec.WEIGHT_MAX)
    ):
        raise ValidationError("modality_strength", strength, "a number in (0, 1]", param="modality_strength")
    return str(spec.ModalityItem(str(modality), float(strength)))


def check(widgets: Mapping[str, Any]) -> None:
    """The widget rules (``nodes.validation``) on the values given; a linked value left out is skipped."""
    check_widgets(**{name: widgets[name] for name in WIDGET_NAMES if name in widgets})


def build_request(widgets: Mapping[str, Any], *, img2img: bool) -> ControlNetRequest:
    """Check the widget values and build the request they describe, without images.

    ``widgets`` holds widget names (:data:`WIDGETS`) and their values; a
    missing widget is "not sent", except ``modality`` (the node's default).
    Width and height 0 are left ``None``: the caller derives them per job
    (the node, from the control image) or chooses what to price (the route).
    Raises :class:`ValidationError` naming the widget, or ``TypeError`` for a
    name that is not a widget.
    """
    unknown = set(widgets) - WIDGETS
    if unknown:
        raise TypeError(f"not a generate-node widget: {', '.join(sorted(unknown))}")
    check(widgets)
    fields = {field: convert(widgets.get(name)) for name, (field, convert) in REQUEST_WIDGETS.items()}
    fields["modality"] = modality_string(
        widgets.get("modality", DEFAULT_MODALITY), widgets.get("modality_strength"), widgets.get("modalities")
    )
    fields["strength"] = _given(widgets.get(STRENGTH_WIDGET)) if img2img else None
    return ControlNetRequest(**fields)
