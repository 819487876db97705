"""``POST /v1/generate/controlnet`` and ``/controlnet-img2img``: quote or create a job.

Order of checks, like a real server: model exists (404) and is not custom
(400), body passes ``spec.validate_body`` after ``spec.normalise_lenient`` (400), referenced assets
exist (404) and images decode (400); then ``?dryRun=true`` answers 269 with
the price and no job, otherwise credits are charged (402) and a job is created.

``POST /v1/generate/custom/{modelId}`` lives in :mod:`.custom` (the model's
declared inputs decide the rules) and reuses the quote, job and output steps here.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from typing import Any

from .. import spec
from ..errors import ValidationError
from . import models_catalog, pricing, render, timeline
from .context import Context
from .faults import JOB_KINDS
from .messages import HttpError, Request, Response
from .render import RenderSpec
from .state import AssetRecord, ParallelLimitReached, new_id

DEFAULT_FAILURE = "Generation failed"
DEFAULT_OWNER = "project_emulator"


def echo_value(value: Any) -> Any:
    """Data URLs are replaced by a short marker in the job's ``metadata.input``."""
    if isinstance(value, str) and value.startswith("data:"):
        return f"<data URL sha256:{hashlib.sha256(value.encode()).hexdigest()[:16]}>"
    return value


def _resolve_image(ctx: Context, field: str, ref: str) -> Any | None:
    """A Pillow image for a data URL or asset id; None for an opaque http(s) URL."""
    if ref.startswith(("http://", "https://")):
        return None  # Scenario accepts a plain URL here but the emulator never fetches it
    if ref.startswith("data:"):
        try:
            return render.open_image(render.decode_base64_image(ref))
        except ValueError as exc:
            raise HttpError(400, str(ValidationError(field, ref, f"a decodable PNG/JPEG/WebP image ({exc})"))) from None
    asset = ctx.store.get_asset(ref)
    if asset is None:
        raise HttpError(404, f"Asset {ref} not found")
    return render.open_image(asset.png())


def _sample_size(width: int, height: int, index: int, mixed: bool) -> tuple[int, int]:
    """Sample 0 has the requested size; with ``mixed_sizes`` later samples differ."""
    if not mixed or index == 0:
        return width, height
    if width != height:
        return height, width
    smaller = width - 64
    return (smaller, height) if smaller >= 64 else (width + 64, height)


def _model_family(model_id: Any) -> str:
    if not isinstance(model_id, str) or not model_id.strip():
        raise HttpError(400, str(ValidationError("modelId", model_id, "a model id like 'flux.1-dev'")))
    model = models_catalog.get_model(model_id.strip())
    if model is None:
        raise HttpError(404, f"Model {model_id} not found")
    family = spec.family_of(model.get("type"), model["id"], bool(model.get("custom")))
    if family == spec.CUSTOM:
        raise HttpError(
            400,
            f"Model {model_id} is a custom model: custom models only run on /generate/custom/{model_id}, "
            "not on the ControlNet endpoints",
        )
    return family


def handle_generate(ctx: Context, req: Request, endpoint: str) -> Response:
    dry_run = req.query.get("dryRun", "").lower() == "true"
    project_id = _project_id(req)
    raw = req.json_object()
    family = _model_family(raw.get("modelId"))
    try:
        lenient = spec.normalise_lenient(raw, endpoint, family)
        body = spec.validate_body(endpoint, lenient, family, image_refs=spec.SERVER_IMAGE_REFS)
    except ValidationError as exc:
        raise HttpError(400, str(exc)) from None

    map_field = "controlImage" if "controlImage" in body else "controlImageId"
    control_img = _resolve_image(ctx, map_field, body[map_field])
    init_img = _resolve_image(ctx, "image", body["image"]) if endpoint == spec.IMG2IMG else None

    cost = pricing.cost_of(body, family)
    quote = _quote_or_charge(ctx, cost, endpoint, dry_run)
    if quote is not None:
        return quote
    config = ctx.config

    if "seed" not in body:
        body["seed"] = secrets.randbelow(spec.SEED_MAX + 1)
    echo = {k: echo_value(v) for k, v in body.items()}
    echo["type"] = endpoint

    fault = ctx.faults.take(JOB_KINDS, req.method, req.path, req.query)
    outputs = _plan_outputs(body, endpoint, config.mixed_sizes, control_img, init_img)
    return _create_job(ctx, req, echo, cost, outputs, project_id, fault, job_type="controlnet")


def _quote_or_charge(
    ctx: Context, cost: float, endpoint: str, dry_run: bool, details: dict[str, float] | None = None
) -> Response | None:
    """A dry run's 269 price answer; otherwise charge the balance (402-style error when short) and return None."""
    if dry_run:
        return Response.json(
            269,
            {
                "creativeUnitsCost": cost,
                "creativeUnitsDiscount": 0,
                "costDetails": details if details is not None else pricing.cost_details(cost, endpoint),
            },
        )
    config = ctx.config
    if not ctx.store.charge(cost):
        raise HttpError(
            config.credits_status, f"{config.credits_reason} (cost {cost} CU, balance {round(ctx.store.balance, 2)} CU)"
        )
    return None


def _create_job(
    ctx: Context,
    req: Request,
    echo: dict[str, Any],
    cost: float,
    outputs: list[AssetRecord],
    project_id: str | None,
    fault: Any,
    *,
    job_type: str,
) -> Response:
    """Store the job (with its fate from a fault, if any) and answer ``{"job": …, "creativeUnitsCost": …}``."""
    config = ctx.config
    fate, error, hint = timeline.SUCCEED, None, None
    if fault is not None and fault.kind == "job_failure":
        fate, error, hint = timeline.FAIL, fault.params.get("error", DEFAULT_FAILURE), fault.params.get("hint")
    elif fault is not None and fault.kind == "stuck_job":
        fate = timeline.STICK
    limit = config.parallel_custom_jobs if job_type == "custom" else config.parallel_inferences
    try:
        record = ctx.store.create_job(
            input_echo=echo,
            cost=cost,
            timing=config.job_timing,
            outputs=outputs,
            author_id=ctx.author_id(req.key),
            owner_id=project_id or DEFAULT_OWNER,
            fate=fate,
            error=error,
            hint=hint,
            job_type=job_type,
            profile=config.progress_profile,
            parallel_limit=limit,
            clock_skew=config.clock_skew,
        )
    except ParallelLimitReached as exc:
        ctx.store.charge(-cost)  # nothing was created: the charge made just before is undone
        if fault is not None:
            ctx.faults.give_back(fault)
        raise too_many_jobs(exc) from None
    view = ctx.store.job_view(record.job_id)
    resp = Response.json(200, {"job": view, "creativeUnitsCost": cost})
    resp.log_extra["job_id"] = record.job_id
    if fault is not None:
        resp.log_extra["fault"] = fault.kind
    return resp


LIMIT_COOLDOWN = 5.0  # remainingSeconds when no running job has a known end (stuck jobs)


def too_many_jobs(exc: ParallelLimitReached) -> HttpError:
    """Scenario's 429 for a team over its parallel-jobs limit (reference \u00a711, open question 15)."""
    remaining = LIMIT_COOLDOWN if exc.remaining is None else max(0.05, math.ceil(exc.remaining * 100) / 100)
    return HttpError(
        429,
        "Too many requests",
        remainingSeconds=remaining,
        details={"actionName": "generate", "actionLimit": exc.limit},
    )


def _project_id(req: Request) -> str | None:
    project_id = req.query.get("projectId")
    if project_id is not None:
        try:
            spec.check_id("projectId", project_id)
        except ValidationError as exc:
            raise HttpError(400, str(exc)) from None
    return project_id


def _plan_outputs(
    body: dict[str, Any], endpoint: str, mixed: bool, control_img: Any, init_img: Any
) -> list[AssetRecord]:
    """One not-yet-rendered asset per sample; pixels are made on first download."""
    control = None if control_img is None else render.to_gray(control_img)
    init = None if init_img is None else render.to_rgb(init_img)
    for arr in (control, init):
        if arr is not None:
            arr.setflags(write=False)
    width = int(body.get("width") or spec.DEFAULTS["width"])
    height = int(body.get("height") or spec.DEFAULTS["height"])
    samples = int(body.get("numSamples") or spec.DEFAULTS["numSamples"])
    strength = float(body.get("strength", spec.DEFAULT_STRENGTH)) if init is not None else 1.0
    seed = int(body["seed"])
    kind = "inference-controlnet-img2img" if endpoint == spec.IMG2IMG else "inference-controlnet"
    outputs: list[AssetRecord] = []
    now = time.time()
    for index in range(samples):
        w, h = _sample_size(width, height, index, mixed)
        sample_seed = (seed + index) % (spec.SEED_MAX + 1)
        rspec = RenderSpec(
            prompt=body["prompt"],
            modality=body["modality"],
            model_id=body["modelId"],
            seed=seed,
            sample_index=index,
            width=w,
            height=h,
            control=control,
            init=init,
            strength=strength,
        )
        outputs.append(
            AssetRecord(
                id=new_id("asset"),
                width=w,
                height=h,
                metadata={
                    "type": kind,
                    "seed": str(sample_seed),
                    "width": w,
                    "height": h,
                    "modality": body["modality"],
                    "prompt": body["prompt"],
                    "modelId": body["modelId"],
                    "parentJobId": None,
                    "sampleIndex": index,
                },
                created=now,
                spec=rspec,
            )
        )
    return outputs
