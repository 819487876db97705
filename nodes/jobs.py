"""Running Scenario jobs for a node: submit, follow, download, decode.

One routine serves the generate nodes (:func:`run_requests`); the recovery
nodes share its downloads (:func:`download_files`):

* the job id is logged at INFO the moment Scenario returns it, before any
  waiting, so a crash or restart never loses paid work (recover it with
  Scenario Poll Job);
* stopping is task cancellation (see ``errors.node_errors``, which turns
  ComfyUI's Stop into it): the client then sends one shielded, best-effort
  cancel for a running job, and a submit that may be on the wire finds the
  job it created and cancels it (or logs what to check);
* fan-out: every request of a node runs at once; the client's per-account
  limiter (``scenario_api.limits``, sized from the team limits or the 429's
  ``actionLimit``) queues the jobs above the account's parallel limit, so a
  batch of B maps runs B jobs at once when the account allows it. The first
  failure cancels the others (and so their Scenario jobs), waits for them,
  and is the error the node reports. Results keep request order. Free reads
  and uploads stay bounded by :data:`FANOUT_LIMIT`;
* each job's files are decoded (to uint8 pixels, in a worker thread) as soon
  as they are downloaded, while the other jobs of the batch still run or
  download; the node then stacks them into its tensors in one float pass
  (``tensors.results_to_tensors``). A file that does not decode is left for
  the node to report after every job ended (a decode error never cancels
  sibling jobs).

Timing knobs (environment, read per run; mainly for tests and local
emulators): ``SCENARIO_POLL_INTERVAL`` seconds between job polls (unset:
the ETA-aware schedule of ``scenario_api.pacing``, whose durations
``SCENARIO_POLL_SCALE`` multiplies),
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

from ..scenario_api import ControlNetRequest, ImageDecodeError, Job, PollPolicy, ScenarioError, imaging
from .concurrency import bounded
from .status import StatusBoard

log = logging.getLogger("scenario_controlnet")

FANOUT_LIMIT = 4  # free reads and uploads at once; jobs are limited per account by the client
DOWNLOAD_LIMIT = 4
DEFAULT_JOB_TIMEOUT = 1800.0


def _env_seconds(name: str, default: float, minimum: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return max(minimum, value)


def poll_interval() -> float | None:
    """A fixed interval from ``SCENARIO_POLL_INTERVAL``, or None: the ETA-aware schedule."""
    if not os.environ.get("SCENARIO_POLL_INTERVAL", "").strip():
        return None
    value = _env_seconds("SCENARIO_POLL_INTERVAL", -1.0, 0.02)
    return None if value < 0 else value


def poll_policy() -> PollPolicy:
    """The ETA schedule's constants, every duration times ``SCENARIO_POLL_SCALE`` (default 1; emulators, benches)."""
    scale = _env_seconds("SCENARIO_POLL_SCALE", 1.0, 1e-4)
    return PollPolicy() if scale == 1.0 else PollPolicy().scaled(scale)


def job_timeout() -> float:
    return _env_seconds("SCENARIO_JOB_TIMEOUT", DEFAULT_JOB_TIMEOUT, 1.0)


@dataclass(frozen=True)
class JobOutcome:
    """A finished job and its downloaded image files (in asset order), not decoded yet."""

    job: Job
    files: list[bytes]
    reused: bool = False  # an earlier paid result served again (the job ledger): nothing billed this time
    decoded: tuple[Any, ...] | None = None  # the files' pixels (imaging.DecodedImage), None if one did not decode


def _decode_all(files: Sequence[bytes]) -> tuple[Any, ...] | None:
    try:
        return tuple(imaging.decode_image(data) for data in files)
    except ImageDecodeError:
        return None  # the node decodes the files again after every job ended, and reports the error then


async def download_files(client: Any, asset_ids: Sequence[str]) -> list[bytes]:
    """Download assets concurrently (credential-free, via the client), in order; no decoding."""

    async def one(_: int, asset_id: str) -> bytes:
        return bytes(await client.download_asset(asset_id))

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
        files = await download_files(client, job.asset_ids)
    except ScenarioError as exc:
        # The job is paid for and finished: say which one, and that queueing again costs nothing (reuse).
        if exc.job_id is None:
            exc.job_id = job_id
        exc.hint = exc.hint or (
            f"job {job_id} succeeded; queue again to fetch its images (reused, not charged again) or use Fetch Asset"
        )
        raise
    decoded = await asyncio.to_thread(_decode_all, files)  # while the batch's other jobs still run or download
    board.observe(index, job)
    if getattr(sub, "reused", False):
        board.note(index, f"reused job {job_id}")
    log.info(
        "Scenario job %s done: %d image(s), cost %s CU", job_id, len(files), job.cost if job.cost is not None else "?"
    )
    return JobOutcome(job=job, files=files, reused=bool(getattr(sub, "reused", False)), decoded=decoded)


async def run_requests(client: Any, requests: Sequence[ControlNetRequest], board: StatusBoard) -> list[JobOutcome]:
    """Run every request as its own job, all at once (the account's limiter queues the excess); in request order."""

    async def one(i: int, req: ControlNetRequest) -> JobOutcome:
        return await run_one(client, req, board, i)

    outcomes = await bounded(max(1, len(requests)), list(requests), one)
    board.refresh(force=True)
    return outcomes
