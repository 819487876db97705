"""Running Scenario jobs for a node: submit, follow, cancel, download, decode.

One routine serves the generate nodes (:func:`run_requests`); the recovery
nodes share its downloads (:func:`download_images`) and fan-out helpers:

* the job id is logged at INFO the moment Scenario returns it, before any
  waiting, so a crash or restart never loses paid work (recover it with
  Scenario Poll Job);
* Stop (ComfyUI's interrupt flag) is polled through ``should_cancel``: the
  client sends one best-effort cancel for the Scenario job and raises
  ``JobCanceledError(by_caller=True)``, which the node turns into a clean
  interrupt. The submit gets the same check, so a Stop while it waits out a
  429/503 for a Scenario slot ends it at once (no job yet: nothing to cancel);
* if the node's task is cancelled (another node failed and ComfyUI ends the
  prompt) the client sends the same cancel and re-raises; a submit on the
  wire at that moment is handled by the client too (it finds the job the
  request created, cancels it, and logs what to check if it cannot);
* fan-out: several requests run concurrently, at most :data:`FANOUT_LIMIT`
  at a time; the first failure cancels the others (and so their Scenario
  jobs) and is the error the node reports. Results keep request order.

Timing knobs (environment, read per run; mainly for tests and local
emulators): ``SCENARIO_POLL_INTERVAL`` seconds between job polls (default 2),
``SCENARIO_JOB_TIMEOUT`` seconds a generate node waits once the job left the
queue (default 1800; queue time is not counted).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..scenario_api import imaging
from ..scenario_api.errors import JobCanceledError
from ..scenario_api.models import ControlNetRequest, Job
from . import bridge
from .status import StatusBoard

log = logging.getLogger("scenario_controlnet")

FANOUT_LIMIT = 4
DOWNLOAD_LIMIT = 4
DEFAULT_POLL_INTERVAL = 2.0
DEFAULT_JOB_TIMEOUT = 1800.0
SIBLING_STOP_GRACE = 15.0  # a sibling's submit or cancel may take a while; then its task is cancelled

T = TypeVar("T")


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


def raise_if_interrupted() -> None:
    """Stop before starting new paid or slow work once the user pressed Stop."""
    if bridge.processing_interrupted():
        raise bridge.interrupt_exception()


class StopSignal:
    """``should_cancel`` for the jobs of one node run: the user's Stop, or a sibling job's failure.

    Stopping siblings cooperatively (their client sees ``should_cancel()``,
    sends the Scenario cancel and returns) guarantees each cancel request has
    completed before the node reports its error. Cancelling their tasks
    instead could cut a cancel request short, and ComfyUI ends the prompt's
    event loop right after the node raises.
    """

    def __init__(self) -> None:
        self.sibling_failed = False

    def set(self) -> None:
        self.sibling_failed = True

    def __call__(self) -> bool:
        return self.sibling_failed or bridge.processing_interrupted()


def _cancelling(task: asyncio.Task[Any]) -> bool:
    """Whether a cancellation of ``task`` is already pending (Python 3.11+; on 3.10 assume not)."""
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


async def gather_or_cancel(
    aws: Iterable[Awaitable[T]],
    *,
    on_failure: Callable[[], None] | None = None,
    grace: float = 0.0,
) -> list[T]:
    """Run awaitables concurrently; on the first failure stop the rest and raise that failure.

    With ``on_failure`` the siblings are first asked to stop on their own
    (see :class:`StopSignal`) and given ``grace`` seconds; whatever is still
    running then is cancelled (the client still sends its Scenario cancel on
    cancellation). Siblings are always awaited before the error propagates.
    The reported error is the first real one; a ComfyUI interrupt wins.
    """
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        first = [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
        if not first:
            return [t.result() for t in tasks]
        pending = [t for t in tasks if not t.done()]
        if pending and on_failure is not None:
            on_failure()
            _, pending_set = await asyncio.wait(pending, timeout=grace)  # our own cancellation may land here too
            pending = list(pending_set)
        for t in pending:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    except asyncio.CancelledError:
        # This task was cancelled (while running or during the siblings' grace): the children must not
        # outlive it - cancel them and wait, so each client sends its Scenario cancel before we go. A child
        # already being cancelled (asyncio.run cancels every task at once) is not cancelled a second time:
        # that would interrupt its clean-up (the Scenario cancel of a job it just submitted).
        for t in tasks:
            if not _cancelling(t):
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    later = [t.exception() for t in tasks if not t.cancelled() and t.exception() is not None]
    for exc in first + later:
        if exc is not None and bridge.is_interrupt(exc):
            raise exc
    raise first[0]  # type: ignore[misc]


async def bounded(
    limit: int,
    items: Sequence[Any],
    fn: Callable[[int, Any], Awaitable[T]],
    *,
    on_failure: Callable[[], None] | None = None,
    grace: float = 0.0,
) -> list[T]:
    """``fn(i, item)`` for every item, at most ``limit`` at a time, results in order."""
    sem = asyncio.Semaphore(limit)

    async def one(i: int, item: Any) -> T:
        async with sem:
            return await fn(i, item)

    return await gather_or_cancel((one(i, item) for i, item in enumerate(items)), on_failure=on_failure, grace=grace)


async def download_images(
    client: Any, asset_ids: Sequence[str], should_cancel: Callable[[], bool] = bridge.processing_interrupted
) -> list[imaging.DecodedImage]:
    """Download assets concurrently (credential-free, via the client) and decode them, in order."""

    async def one(_: int, asset_id: str) -> imaging.DecodedImage:
        raise_if_interrupted()
        data = await client.download_asset(asset_id, should_cancel=should_cancel)
        return await asyncio.to_thread(imaging.decode_image, data)

    return await bounded(DOWNLOAD_LIMIT, list(asset_ids), one)


async def run_one(
    client: Any, request: ControlNetRequest, board: StatusBoard, index: int, stop: StopSignal | None = None
) -> JobOutcome:
    """Submit one request, follow its job to the end, download and decode its images."""
    stop = stop if stop is not None else StopSignal()
    raise_if_interrupted()
    if stop.sibling_failed:
        raise JobCanceledError("Scenario: not submitted because another job of this node failed", by_caller=True)
    # The client handles its own cancellation mid-submit: it looks for the job the request may have created,
    # cancels it and logs what to check (prompt, seed) before the CancelledError goes on.
    sub = await client.submit(request, should_cancel=stop)
    job_id = sub.job_id
    body = request.summary()
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
        " [adopted after a lost reply]" if getattr(sub, "adopted", False) else "",
    )
    board.submitted(index, sub.job, sub.creative_units)

    def on_progress(job: Job) -> None:
        board.observe(index, job)

    # A ScenarioTimeoutError here leaves the job running; its message names the job id and Poll Job.
    job = await client.wait_for_job(
        job_id,
        on_progress=on_progress,
        should_cancel=stop,
        timeout=job_timeout(),
        poll_interval=poll_interval(),
    )
    board.observe(index, job)
    board.note(index, "downloading")
    images = await download_images(client, job.asset_ids, stop)
    board.observe(index, job)
    log.info(
        "Scenario job %s done: %d image(s), cost %s CU", job_id, len(images), job.cost if job.cost is not None else "?"
    )
    return JobOutcome(job=job, images=images)


async def run_requests(client: Any, requests: Sequence[ControlNetRequest], board: StatusBoard) -> list[JobOutcome]:
    """Run every request as its own job (bounded fan-out); outcomes in request order."""

    stop = StopSignal()

    async def one(i: int, req: ControlNetRequest) -> JobOutcome:
        return await run_one(client, req, board, i, stop)

    outcomes = await bounded(FANOUT_LIMIT, list(requests), one, on_failure=stop.set, grace=SIBLING_STOP_GRACE)
    board.refresh(force=True)
    return outcomes
