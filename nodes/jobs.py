"""Running Scenario jobs for a node: submit, follow, download, decode.

One routine serves the generate nodes (:func:`run_requests`); the recovery
nodes share its downloads (:func:`download_images`):

* the job id is logged at INFO the moment Scenario returns it, before any
  waiting, so a crash or restart never loses paid work (recover it with
  Scenario Poll Job);
* stopping is task cancellation (see ``errors.node_errors``, which turns
  ComfyUI's Stop into it): the client then sends one shielded, best-effort
  cancel for a running job, and a submit that may be on the wire finds the
  job it created and cancels it (or logs what to check);
* fan-out: several requests run concurrently, at most :data:`FANOUT_LIMIT`
  at a time (``concurrency.bounded``); the first failure cancels the others
  (and so their Scenario jobs), waits for them, and is the error the node
  reports. Results keep request order.

Timing knobs (environment, read per run; mainly for tests and local
emulators): ``SCENARIO_POLL_INTERVAL`` seconds between job polls (default 2),
``SCENARIO_JOB_TIMEOUT`` seconds a generate node waits once the job left the
queue (default 1800; queue time is not counted).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..scenario_api import ControlNetRequest, Job, ScenarioError, imaging
from .concurrency import bounded
from .status import StatusBoard

log = logging.getLogger("scenario_controlnet")

FANOUT_LIMIT = 4
DOWNLOAD_LIMIT = 4
DEFAULT_POLL_INTERVAL = 2.0
DEFAULT_JOB_TIMEOUT = 1800.0


def _env_seconds(name: str, default: float, minimum: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return max(minimum, value)


def poll_interval() -> float:
    return _env_seconds("SCENARIO_POLL_INTERVAL", DEFAULT_POLL_INTERVAL, 0.02)


def job_timeout() -> float:
    return _env_seconds("SCENARIO_JOB_TIMEOUT", DEFAULT_JOB_TIMEOUT, 1.0)


@dataclass(frozen=True)
class JobOutcome:
    """A finished job and its decoded images (in asset order)."""

    job: Job
    images: list[imaging.DecodedImage]
    reused: bool = False  # an earlier paid result served again (the job ledger): nothing billed this time


async def download_images(client: Any, asset_ids: Sequence[str]) -> list[imaging.DecodedImage]:
    """Download assets concurrently (credential-free, via the client) and decode them, in order."""

    async def one(_: int, asset_id: str) -> imaging.DecodedImage:
        data = await client.download_asset(asset_id)
        return await asyncio.to_thread(imaging.decode_image, data)

    return await bounded(DOWNLOAD_LIMIT, list(asset_ids), one)


async def run_one(client: Any, request: ControlNetRequest, board: StatusBoard, index: int) -> JobOutcome:
    """Submit one request, follow its job to the end, download and decode its images."""
    # The client handles its own cancellation mid-submit: it looks for the job the request may have created,
    # cancels it and logs what to check (prompt, seed) before the CancelledError goes on.
    sub = await client.submit(request)
    job_id = sub.job_id
    body = request.summary()
    if getattr(sub, "reused", False):
        log.info("Scenario job %s reused: same request and seed already paid for; nothing submitted", job_id)
    log.info(
        "Scenario job %s submitted (model %s, modality %s, seed %s, %s sample(s), %s x %s, cost %s CU)%s",
        job_id,
        body.get("model_id"),
        body.get("modality"),
        sub.request.seed if getattr(sub, "request", None) is not None else body.get("seed"),
        body.get("num_samples", 1),
        body.get("width"),
        body.get("height"),
        sub.creative_units if sub.creative_units is not None else "?",
        " [adopted after a lost reply]"
        if getattr(sub, "adopted", False)
        else (" [reused, not charged again]" if getattr(sub, "reused", False) else ""),
    )
    board.submitted(index, sub.job, sub.creative_units)

    def on_progress(job: Job) -> None:
        board.observe(index, job)

    # A ScenarioTimeoutError here leaves the job running; its message names the job id and Poll Job.
    job = await client.wait_for_job(
        job_id,
        on_progress=on_progress,
        timeout=job_timeout(),
        poll_interval=poll_interval(),
    )
    board.observe(index, job)
    board.note(index, "downloading")
    try:
        images = await download_images(client, job.asset_ids)
    except ScenarioError as exc:
        # The job is paid for and finished: say which one, and that queueing again costs nothing (reuse).
        if exc.job_id is None:
            exc.job_id = job_id
        exc.hint = exc.hint or (
            f"job {job_id} succeeded; queue again to fetch its images (reused, not charged again) or use Fetch Asset"
        )
        raise
    board.observe(index, job)
    if getattr(sub, "reused", False):
        board.note(index, f"reused job {job_id}")
    log.info(
        "Scenario job %s done: %d image(s), cost %s CU", job_id, len(images), job.cost if job.cost is not None else "?"
    )
    return JobOutcome(job=job, images=images, reused=bool(getattr(sub, "reused", False)))


async def run_requests(client: Any, requests: Sequence[ControlNetRequest], board: StatusBoard) -> list[JobOutcome]:
    """Run every request as its own job (bounded fan-out); outcomes in request order."""

    async def one(i: int, req: ControlNetRequest) -> JobOutcome:
        return await run_one(client, req, board, i)

    outcomes = await bounded(FANOUT_LIMIT, list(requests), one)
    board.refresh(force=True)
    return outcomes
