"""Scenario Poll Job: recover the results of a job started earlier (free).

Give the job id a generate node logged or output (or one from the Scenario
app). The node waits, with progress, until the job ends or ``timeout_seconds``
of wall-clock time pass, then outputs the asset ids and the status.

Decisions (documented on the help page):

* **Timeout is not an error.** The node outputs the current status
  (e.g. ``in-progress``) and the asset ids of the jobs finished so far (none
  for a single unfinished job); queue the workflow again later to check
  again. ``timeout_seconds = 0`` checks once without waiting.
* **Failure is an error**: Scenario's reason and hint are shown. A job
  canceled on Scenario's side is an error too (it has no images).
* **Stop never cancels the Scenario job**: this node only observes.
* **Re-checking**: ``IS_CHANGED`` returns a stable value once every job of
  the input reached ``success`` in this ComfyUI session (the cached result is
  final), and a fresh value otherwise, so a re-queue polls again instead of
  replaying a stale "in-progress" from ComfyUI's cache. It never returns NaN.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ..scenario_api import ValidationError
from . import bridge, inputs, stack
from .concurrency import bounded
from .errors import node_errors, prefixed
from .ids import join_ids, parse_ids, split_ids

if TYPE_CHECKING:  # what the node runs loads on first use (nodes/stack.py)
    from ..scenario_api import Job
    from .status import StatusBoard

log = logging.getLogger("scenario_controlnet")

DEFAULT_TIMEOUT = 600
MAX_TIMEOUT = 24 * 3600

_lock = threading.Lock()
_finished: dict[str, str] = {}  # job id -> comma-joined asset ids, for jobs seen in "success"


def _remember(job_id: str, asset_ids: tuple[str, ...]) -> None:
    with _lock:
        _finished[job_id] = join_ids(list(asset_ids))


def forget_all() -> None:
    """Clear the memory of finished jobs (tests)."""
    with _lock:
        _finished.clear()


async def follow_job(client: Any, job_id: str, board: StatusBoard, index: int, until: float) -> Job:
    """Watch ``job_id`` until it ends or ``until`` (``loop.time()``) passes; never cancels it.

    The one watching loop (``scenario_api.watch``) as an observer: a job
    that ended without results is returned (the node reports it after all
    jobs are in), and a Stop (task cancellation) just ends the wait: only the
    client's ``wait_for_job`` cancels a job it is cancelled on.
    """
    interval = stack.poll_interval()
    schedule = client.schedule(job_id) if interval is None else None
    job = await stack.watch_job(
        client,
        job_id,
        on_update=lambda job: board.observe(index, job),
        limits=stack.Limits(until=until),
        next_delay=schedule if schedule is not None else stack.fixed_interval(interval or 0.0),
        max_failures=client.max_poll_failures,
        raise_on_outcome=False,
    )
    if schedule is not None:
        schedule(job)  # a finished job teaches the schedule its phase lengths
    return job


class ScenarioPollJob:
    CATEGORY = "Scenario"
    FUNCTION = "poll"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("asset_ids", "status")
    OUTPUT_TOOLTIPS = (
        (
            "Asset ids of the finished job(s), comma-separated in job order (empty while a job is unfinished). "
            "Feed Scenario Fetch Asset."
        ),
        (
            "The job status (success, or the current status such as in-progress when timeout_seconds ran out); "
            "comma-separated per job when several ids were given."
        ),
    )
    DESCRIPTION = (
        "Wait for Scenario job(s) and output their asset ids, e.g. to recover images after a restart or a "
        "timeout. Free: it only reads the job. Stop ends the wait without cancelling the job."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "job_id": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "Scenario job id(s) (job_...), as logged or output by a generate node; several "
                        "separated by commas or new lines.",
                    },
                ),
                "timeout_seconds": (
                    "INT",
                    {
                        "default": DEFAULT_TIMEOUT,
                        "min": 0,
                        "max": MAX_TIMEOUT,
                        "tooltip": "How long to wait (wall clock). When it runs out the node outputs the current "
                        "status instead of failing; queue again to keep waiting. 0 = check once.",
                    },
                ),
            },
            "hidden": dict(inputs.HIDDEN),
        }

    @classmethod
    def VALIDATE_INPUTS(cls, job_id: Any = None) -> bool | str:
        if job_id is None:  # linked: checked when it runs
            return True
        try:
            parse_ids(job_id, "job", "job_id")
        except ValidationError as exc:
            return prefixed(str(exc))
        return True

    @classmethod
    def IS_CHANGED(cls, job_id: Any = None, **_: Any) -> str:
        ids = split_ids(job_id)
        with _lock:
            done = bool(ids) and all(i in _finished for i in ids)
        if done:
            return "finished:" + join_ids(ids)
        return f"check:{time.time_ns()}"

    async def poll(
        self, job_id: str, timeout_seconds: int = DEFAULT_TIMEOUT, unique_id: str | None = None
    ) -> tuple[str, str]:
        async with node_errors():
            ids = parse_ids(job_id, "job", "job_id")
            settings = stack.resolve_settings()
            progress = bridge.Progress(unique_id)
            board = stack.StatusBoard(progress, len(ids))
            deadline = asyncio.get_running_loop().time() + max(0, int(timeout_seconds))
            async with stack.shared_client(settings) as client:

                async def one(i: int, jid: str) -> Any:
                    return await follow_job(client, jid, board, i, deadline)

                jobs = await bounded(stack.FANOUT_LIMIT, ids, one)
            board.refresh(force=True)
            for job in jobs:
                error = stack.outcome_error(job)
                if error is not None:
                    raise error
            asset_ids: list[str] = []
            for job in jobs:
                if job.status == stack.JobStatus.SUCCESS:
                    _remember(job.job_id, job.asset_ids)
                    asset_ids.extend(job.asset_ids)
            statuses = [job.status for job in jobs]
            log.info("Scenario Poll Job: %s", ", ".join(f"{j.job_id} {j.status}" for j in jobs))
            if any(s != stack.JobStatus.SUCCESS for s in statuses):
                progress.text(board.text() + " | not finished: queue the workflow again to keep waiting")
            return (join_ids(asset_ids), ",".join(statuses))
