"""The two generate nodes: ControlNet text-to-image and ControlNet img2img.

Both share :class:`_ScenarioGenerateBase`; the img2img node only adds its
init-image inputs and ``strength``. A run goes, cheapest checks first:

1. the widget values become the base request (``request_builder``, which
   runs the widget rules again: linked values skipped ``VALIDATE_INPUTS``),
   then the exactly-one-source rules, tensor shapes, and the request rules
   that no model family accepts (``spec.precheck_request`` on a placeholder
   draft) - no network at all;
2. credentials (environment or the user-directory file) - no network;
3. the model's family (a free read), then the model's rules
   (``spec.check_request``), still before any asset read; then each job's
   request with its derived size, with the placeholder asset id, before any
   upload;
4. uploads of control / init pixels (once per distinct image, cached; control maps as
   lossless PNG, init pixels as PNG or the opt-in JPEG / WebP of ``init_image_format``);
5. the optional budget quote (free dry runs); refusal submits nothing;
6. submit, follow and download each job (see ``jobs``).

No ``IS_CHANGED``: ComfyUI's cache (inputs + hidden ``UNIQUE_ID``) means a
re-queue with the same seed and inputs is served from the cache - no new job,
no new cost - while a new seed runs again. ``UNIQUE_ID`` also keeps two
identical nodes from being merged into one paid call.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..scenario_api import spec
from ..scenario_api.errors import ScenarioError
from . import bridge, inputs, stack
from .concurrency import bounded
from .errors import node_errors, prefixed
from .ids import join_ids
from .validation import validate_inputs_method

if TYPE_CHECKING:  # what the nodes run loads on first use (nodes/stack.py)
    from ..scenario_api.client import ScenarioClient
    from ..scenario_api.imaging import EncodedImage
    from ..scenario_api.models import ControlNetRequest
    from . import plan
    from .results import RunReport

log = logging.getLogger("scenario_controlnet")

OUTPUT_TOOLTIPS = (
    "The generated images, B x num_samples of them in control-batch order. " + inputs.MIXED_SIZES_NOTE,
    (
        "The Scenario job id (several comma-separated with a control batch). Keep it to recover results with "
        "Scenario Poll Job."
    ),
    "The Scenario asset ids of the images, comma-separated, in output order (feed Scenario Fetch Asset).",
)


def job_ids_text(outcomes: list[Any]) -> str:
    return join_ids([o.job.job_id for o in outcomes])


def _size_text(size: int) -> str:
    return f"{size / 2**20:.2f} MiB" if size >= 100 * 1024 else f"{max(1, round(size / 1024))} KiB"


def init_upload_note(choice: str, encodes: list[tuple[EncodedImage, float]]) -> str:
    """What the init pixels were sent as, e.g. "init image: webp q90, 0.16 MiB, encoded in 310 ms"."""
    size = sum(len(encoded.data) for encoded, _ in encodes)
    seconds = sum(s for _, s in encodes)
    what = "init image: " if len(encodes) == 1 else f"init images: {len(encodes)} x "
    total = "" if len(encodes) == 1 else " in all"
    took = f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"
    return f"{what}{choice}, {_size_text(size)}{total}, encoded in {took}"


class _ScenarioGenerateBase:
    """Shared declaration and run logic; subclasses set ``IMG2IMG`` and the input layout."""

    IMG2IMG = False
    CATEGORY = "Scenario"
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE", "STRING", "STRING")
    RETURN_NAMES = ("images", "job_id", "asset_ids")
    OUTPUT_TOOLTIPS = OUTPUT_TOOLTIPS

    VALIDATE_INPUTS = validate_inputs_method()

    async def _prepare(
        self,
        client: ScenarioClient,
        settings: Any,
        base: ControlNetRequest,
        controls: list[plan.Source],
        inits: list[plan.Source] | None,
        width: int,
        height: int,
        progress: bridge.Progress,
        init_format: str = inputs.INIT_FORMAT_DEFAULT,
    ) -> tuple[list[ControlNetRequest], tuple[str, ...]]:
        """One validated request per control source, and the notes for the user (custom models, lossy init).

        Pixels are uploaded only once all requests passed: control maps as
        lossless PNG, init pixels as ``init_format`` (an ``init_image_format``
        choice), whose encoded size and time are logged (and, when lossy, put
        on the status line).

        The family's rules are checked right after the model lookup, before
        any asset read; the derived sizes are checked per job afterwards.
        """
        img2img = inits is not None
        model = await client.get_model(base.model_id)
        types = await client.referenced_types(base, model)  # LoRA types: free reads
        declared = model.declared if model.family == spec.CUSTOM else None
        spec.check_request(stack.plan.draft(base, width, height, img2img), model, model_types=types)
        if int(width or 0) > 0 and int(height or 0) > 0:  # an explicit size needs no asset look-up
            sizes: list[tuple[int, int] | None] = [None] * len(controls)
        else:
            sizes = await bounded(stack.FANOUT_LIMIT, controls, lambda _, src: stack.plan.source_size(client, src))
        drafts = []
        for size in sizes:
            w, h = stack.plan.output_size(width, height, size, model.family, declared)
            d = stack.plan.draft(base, w, h, img2img)
            spec.check_request(d, model, model_types=types)
            drafts.append(d)
        notes = spec.custom_notes(drafts[0], model) if declared is not None and drafts else ()
        if notes:  # e.g. "modality not used by this model (model_z-image declares no modality input)"
            for note in notes:
                log.info("Scenario: %s", note)
                progress.text(note)
        if any(src.array is not None for src in controls + (inits or [])):
            progress.text("uploading images")
        control_ids = await stack.plan.resolve_ids(client, settings, controls, "comfyui-control")
        init_ids = None
        if inits is not None:
            fmt, quality = inputs.INIT_IMAGE_FORMATS[init_format]
            encodes: list[tuple[EncodedImage, float]] = []
            init_ids = await stack.plan.resolve_ids(
                client,
                settings,
                inits,
                "comfyui-init",
                format=fmt,
                quality=quality,
                on_encoded=lambda encoded, seconds: encodes.append((encoded, seconds)),
            )
            if encodes:
                note = init_upload_note(init_format, encodes)
                log.info("Scenario: %s", note)
                if fmt != "png":  # the opt-in lossy mode says what it sent, on every status line
                    progress.text(note)
                    notes = (*notes, note)
        return [
            replace(d, control_image_id=control_ids[i], image=init_ids[i] if init_ids is not None else None)
            for i, d in enumerate(drafts)
        ], notes

    async def run(self, unique_id: str | None = None, **widgets: Any) -> dict[str, Any]:
        """ComfyUI's entry point: the outputs plus the ``ui`` payload (previews and the final state)."""
        result, ui = await self._run(unique_id, widgets)
        return {"ui": ui, "result": result}

    async def generate(self, unique_id: str | None = None, **widgets: Any) -> tuple[Any, str, str]:
        """Run the node and return its outputs only (``images``, ``job_id``, ``asset_ids``)."""
        result, _ui = await self._run(unique_id, widgets)
        return result

    async def _run(self, unique_id: str | None, widgets: dict[str, Any]) -> tuple[tuple[Any, str, str], dict[str, Any]]:
        """Run the node: ``widgets`` are the inputs declared in ``INPUT_TYPES`` (see ``request_builder``).

        Whatever happens, the browser is told how the run ended (``results``).
        """
        report = stack.RunReport(None if unique_id is None else str(unique_id))
        try:
            return await self._generate(report, unique_id, widgets)
        except BaseException as exc:
            report.ended(exc)
            raise

    async def _generate(
        self, report: RunReport, unique_id: str | None, widgets: dict[str, Any]
    ) -> tuple[tuple[Any, str, str], dict[str, Any]]:
        async with node_errors():
            base = stack.build_request(widgets, img2img=self.IMG2IMG)
            controls = await stack.plan.sources(
                widgets.get("control_image"),
                widgets.get("control_image_id"),
                "control_image",
                "control_image_id",
                "control map",
            )
            inits = (
                stack.plan.pair_inits(
                    await stack.plan.sources(
                        widgets.get("image"), widgets.get("image_id"), "image", "image_id", "init image"
                    ),
                    len(controls),
                )
                if self.IMG2IMG
                else None
            )
            width, height = widgets.get("width") or 0, widgets.get("height") or 0
            init_format = widgets.get(inputs.INIT_FORMAT_WIDGET) or inputs.INIT_FORMAT_DEFAULT  # checked above
            max_creative_units = widgets.get(stack.BUDGET_WIDGET) or 0.0
            # Rules that fail for every model family (linked values skipped VALIDATE_INPUTS and
            # ComfyUI's own range checks): refused before any network call, not even the model lookup.
            spec.precheck_request(stack.plan.draft(base, width, height, self.IMG2IMG))
            settings = stack.resolve_settings()
            progress = bridge.Progress(unique_id)
            progress.text("checking the request")
            # recorded with each paid request
            origin = stack.ORIGIN.set(stack.node_origin(unique_id, bridge.prompt_id()))
            try:
                async with stack.shared_client(settings) as client:
                    requests, notes = await self._prepare(
                        client, settings, base, controls, inits, width, height, progress, init_format
                    )
                    if max_creative_units and max_creative_units > 0:
                        progress.text("asking Scenario for a price quote")
                        await stack.enforce_budget(client, requests, float(max_creative_units))
                    report.sizes = [(r.width, r.height) for r in requests if r.width and r.height]
                    report.board = stack.StatusBoard(progress, len(requests), notes=notes)
                    outcomes = await stack.run_requests(client, requests, report.board)
            finally:
                stack.ORIGIN.reset(origin)
            files = [data for o in outcomes for data in o.files]
            if not files:
                raise ScenarioError(prefixed(f"job(s) {job_ids_text(outcomes)} finished without any image"))
            # pixels each job decoded as it finished; a job whose files did not decode leaves them to this call,
            # which raises the error
            decoded = [d for o in outcomes for d in (o.decoded if o.decoded is not None else [None] * len(o.files))]
            images, _masks = await asyncio.to_thread(stack.tensors.decode_to_tensors, files, decoded)
            job_ids = job_ids_text(outcomes)
            all_assets = [a for o in outcomes for a in o.job.asset_ids]
            asset_ids = join_ids(all_assets)
            costs = [o.job.cost for o in outcomes if o.job.cost is not None]
            billed = sum(costs) if len(costs) == len(outcomes) else None  # else the board's submit-time costs
            # The job ledger serves an earlier paid result instead of submitting again: say so, and bill nothing.
            report.reused = bool(outcomes) and all(getattr(o, "reused", False) for o in outcomes)
            if report.reused:
                billed = 0.0
            state = report.done([o.job.job_id for o in outcomes], all_assets, billed)
            previews = await stack.save_previews(files, report.node)
            return (images, job_ids, asset_ids), stack.ui_payload(previews, state)


class ScenarioControlNetGenerate(_ScenarioGenerateBase):
    DESCRIPTION = (
        "Generate images with Scenario's ControlNet (text-to-image): a prompt plus a control map (canny edges, "
        "pose, depth...) steer a Scenario model. Runs remotely and costs Scenario creative units; a batch of "
        "control images runs one job per image. Needs SCENARIO_API_KEY / SCENARIO_API_SECRET or the "
        "credentials file (see the help page)."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": inputs.common_required(),
            "optional": {**inputs.control_image_inputs(), **inputs.common_optional_tail()},
            "hidden": dict(inputs.HIDDEN),
        }


class ScenarioImg2ImgControlNet(_ScenarioGenerateBase):
    IMG2IMG = True
    DESCRIPTION = (
        "Transform an init image with Scenario's ControlNet img2img: the control map keeps the structure, the "
        "prompt and strength decide how far the result departs from the init image. Runs remotely and costs "
        "Scenario creative units; a batch of control images runs one job per image."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        required = inputs.common_required()
        required["strength"] = inputs.strength_input()
        return {
            "required": required,
            "optional": {
                **inputs.control_image_inputs(),
                **inputs.init_image_inputs(),
                **inputs.common_optional_tail(),
                **inputs.init_format_input(),  # appended later: saved workflows keep their widget order
            },
            "hidden": dict(inputs.HIDDEN),
        }
