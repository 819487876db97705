"""``POST /v1/generate/custom/{modelId}``: the custom path, ruled by the model's declared inputs.

Order of answers, as recorded from Scenario in October 2026:

1. unknown model: 404 ``Model <id> not found``;
2. a model that is not ``custom`` (a LoRA, a composition, a legacy base) in the
   path: 400 ``Custom models only are supported for this endpoint``;
3. the body against the model's ``inputs`` with
   :func:`scenario_api.declared_inputs.first_violation_response` (server mode:
   the same rules as the client, with Scenario's recorded leniencies), each
   violation answered with Scenario's text (``Input lorasScale must be at most
   2``, ``Input loras must be at most 6 items long``, ``Invalid model(s): ...``,
   404 ``Model <id> not found`` for an unknown LoRA);
4. referenced assets exist (404) and decode;
5. ``?dryRun=true`` (or ``api``) answers 269 with a price shaped like the
   recorded ones (``custom-generation`` + ``quality-gate``): a prompt-only body
   is priced, no control image needed; otherwise credits are charged and a job
   of type ``custom`` is created. Outputs are rendered from the control map
   like the legacy endpoints (one asset per output).
"""

from __future__ import annotations

import secrets
from typing import Any

from .. import declared_inputs as di
from .. import spec
from . import models_catalog, pricing
from .context import Context
from .faults import JOB_KINDS
from .generate import _create_job, _plan_outputs, _project_id, _quote_or_charge, _resolve_image, echo_value
from .messages import HttpError, Request, Response

CUSTOM_ONLY_REASON = "Custom models only are supported for this endpoint"
DRY_RUN_VALUES = ("true", "api")
FALLBACK_SIZE = 1024


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return value[0] if value and isinstance(value[0], str) else None
    return value if isinstance(value, str) and value else None


def declared_model(model_id: str) -> tuple[dict[str, Any], di.DeclaredModel]:
    """The record and its declarations; HttpError for an unknown or non-custom model."""
    record = models_catalog.get_model(model_id)
    if record is None:
        raise HttpError(404, f"Model {model_id} not found")
    if not record.get("custom"):
        raise HttpError(400, CUSTOM_ONLY_REASON)
    return record, di.DeclaredModel.from_record(record)


def handle_custom(ctx: Context, req: Request, model_id: str) -> Response:
    dry_run = req.query.get("dryRun", "").lower() in DRY_RUN_VALUES
    project_id = _project_id(req)
    _, model = declared_model(model_id)
    raw = req.json_object()
    body, violation = di.first_violation_response(model, raw, models_catalog.model_type)
    if violation is not None:
        raise HttpError(violation.status, violation.reason)

    control_d, image_d = model.role("control_image"), model.role("image")
    control_ref = _first(body.get(control_d.name)) if control_d else None
    init_ref = _first(body.get(image_d.name)) if image_d else None
    control_img = _resolve_image(ctx, control_d.name, control_ref) if control_d and control_ref else None
    init_img = _resolve_image(ctx, image_d.name, init_ref) if image_d and init_ref else None

    cost, details = pricing.custom_cost(model, body)
    quote = _quote_or_charge(ctx, cost, spec.CUSTOM_ENDPOINT, dry_run, details)
    if quote is not None:
        return quote

    seed_d = model.role("seed")
    seed = body.get(seed_d.name) if seed_d else None
    if not isinstance(seed, (int, float)) or isinstance(seed, bool):
        seed = secrets.randbelow(spec.SEED_MAX + 1)
        if seed_d is not None:
            body[seed_d.name] = seed
    echo = {"modelId": model_id, **{k: echo_value(v) for k, v in body.items()}, "type": spec.CUSTOM_ENDPOINT}
    fault = ctx.faults.take(JOB_KINDS, req.method, req.path, req.query)
    outputs = _plan_outputs(
        _render_shape(model, model_id, body, control_img, int(seed)),
        spec.IMG2IMG if init_img is not None else spec.TXT2IMG,
        ctx.config.mixed_sizes,
        control_img,
        init_img,
    )
    return _create_job(ctx, req, echo, cost, outputs, project_id, fault, job_type="custom")


def _render_shape(
    model: di.DeclaredModel, model_id: str, body: dict[str, Any], control: Any, seed: int
) -> dict[str, Any]:
    """The legacy-shaped fields the renderer reads (samples, size, modality, strength, seed)."""

    def value(role: str, fallback: Any) -> Any:
        d = model.role(role)
        if d is None:
            return fallback
        v = body.get(d.name, d.default)
        return fallback if v is None or v == "" else v

    width, height = value("width", None), value("height", None)
    if width is None or height is None:
        size = control.size if control is not None else None
        dw, dh = di.derive_size(model, int(width or 0), int(height or 0), size)
        width, height = dw or FALLBACK_SIZE, dh or FALLBACK_SIZE
    modality = value("modality", "canny")
    if isinstance(modality, list):
        modality = modality[0] if modality else "canny"
    shape: dict[str, Any] = {
        "prompt": value("prompt", ""),
        "modelId": model_id,
        "modality": str(modality),
        "numSamples": int(value("num_outputs", 1)),
        "width": int(width),
        "height": int(height),
        "seed": seed,
    }
    strength = value("strength", None)
    if strength is not None:
        shape["strength"] = float(strength)
    return shape
