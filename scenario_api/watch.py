"""The one job-watching loop: poll a job until it ends, with progress, limits and the outcome mapping.

It serves the client's :meth:`ScenarioClient.wait_for_job` (generate nodes,
CLI) and Scenario Poll Job, which only observes. What each caller differs in is
a parameter, not a copy of the loop:

* ``on_update(job)`` (sync or async) runs after every poll;
* a :class:`Limits` says when to stop waiting: ``run_timeout`` counts only the
  time after the job left the queue (a long queue is Scenario's capacity, not a
  stuck job) and raises :class:`ScenarioTimeoutError` (the job is *not*
  cancelled); ``until`` is a deadline (``loop.time()``) after which the job is
  returned as it is (an observer's "not finished yet");
* ``next_delay(job, polls)`` picks the pause before the next poll: a fixed
  interval, or the ETA-aware :class:`~.pacing.EtaSchedule` (the client's
  default), which also gives the ``first_delay`` before the first poll;
* a poll that fails transiently (network, 5xx, 429 after the read retries) is
  tolerated ``max_failures - 1`` times in a row.

:func:`outcome_error` is the one mapping of a finished job to its error
(failure -> :class:`JobFailedError`, canceled -> :class:`JobCanceledError`,
an unknown status -> :class:`ScenarioError`). Cancelling the watching task
just stops the loop; whoever owns the job decides whether to cancel it
remotely (the client does, Poll Job does not).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import (
    JobCanceledError,
    JobFailedError,
    RateLimitedError,
    ScenarioError,
    ScenarioTimeoutError,
    ServerError,
    TransportError,
)
from .models import ACTIVE_STATUSES, QUEUED_STATUSES, TERMINAL_STATUSES, Job, JobStatus
from .transport import LOG

__all__ = ["Limits", "NextDelay", "OnUpdate", "fixed_interval", "outcome_error", "watch_job"]

OnUpdate = Callable[[Job], "Awaitable[None] | None"]
NextDelay = Callable[[Job, int], float]  # (latest job, polls so far) -> seconds until the next poll


class JobReader(Protocol):
    async def get_job(self, job_id: str) -> Job: ...


@dataclass(frozen=True)
class Limits:
    """When to stop waiting (both optional; neither means "until the job ends")."""

    run_timeout: float | None = None  # seconds after the job left pending/queued; then ScenarioTimeoutError
    until: float | None = None  # loop.time() deadline; then the job is returned unfinished


def fixed_interval(seconds: float) -> NextDelay:
    """The default schedule: the same pause after every poll."""
    pause = max(0.0, seconds)

    def delay(_job: Job, _polls: int) -> float:
        return pause

    return delay


def outcome_error(job: Job) -> ScenarioError | None:
    """The error of a job that ended without results (None for success or a job still running)."""
    if job.status == JobStatus.FAILURE:
        return JobFailedError(
            f"Scenario job {job.job_id} failed",
            reason=job.error or "no reason given",
            hint=job.hint,
            job_id=job.job_id,
        )
    if job.status == JobStatus.CANCELED:
        return JobCanceledError(f"Scenario job {job.job_id} was canceled, so it has no images", job_id=job.job_id)
    if job.status not in ACTIVE_STATUSES and job.status not in TERMINAL_STATUSES:
        return ScenarioError(
            f"Scenario reported an unknown status {job.status!r} for job {job.job_id}; stopped waiting "
            "(protocol change?)",
            job_id=job.job_id,
        )
    return None


async def watch_job(
    client: JobReader,
    job_id: str,
    *,
    on_update: OnUpdate | None = None,
    limits: Limits | None = None,
    next_delay: NextDelay,
    max_failures: int = 3,
    raise_on_outcome: bool = True,
    first_delay: float = 0.0,
) -> Job:
    """Poll ``job_id`` until it ends or a limit is reached; return the last job seen.

    With ``raise_on_outcome`` (the default) a job that ended without results
    raises :func:`outcome_error`'s error; without it the terminal job is
    returned and the caller decides (Poll Job collects several first). An
    unknown status always raises: the loop cannot tell whether it will end.
    ``first_delay`` seconds pass before the first poll (a job just submitted
    is certainly still queued: asking would cost a request and tell nothing).
    """
    limits = limits if limits is not None else Limits()
    loop = asyncio.get_running_loop()
    if first_delay > 0:
        await asyncio.sleep(_bounded_nap(loop, first_delay, limits.until))
    running_since: float | None = None
    failures = 0
    polls = 0
    while True:
        try:
            job = await client.get_job(job_id)
            failures = 0
        except (TransportError, ServerError, RateLimitedError) as exc:
            failures += 1
            if failures >= max(1, max_failures):
                raise _lost_contact(exc, job_id) from None
            LOG.warning("polling job %s failed (%s); will keep trying", job_id, type(exc).__name__)
            await asyncio.sleep(_bounded_nap(loop, next_delay(_placeholder(job_id), polls), limits.until))
            if limits.until is not None and loop.time() >= limits.until:
                raise
            continue
        polls += 1
        if on_update is not None:
            await _maybe_await(on_update(job))
        error = outcome_error(job)
        if job.status == JobStatus.SUCCESS:
            return job
        if error is not None:
            if raise_on_outcome or job.status not in TERMINAL_STATUSES:
                raise error
            return job
        now = loop.time()
        if limits.until is not None and now >= limits.until:
            return job
        if running_since is None and job.status not in QUEUED_STATUSES:
            running_since = now
        nap = next_delay(job, polls)
        if limits.run_timeout is not None and running_since is not None:
            left = running_since + limits.run_timeout - now
            if left <= 0:
                raise ScenarioTimeoutError(
                    f"Scenario job {job_id} did not finish within {limits.run_timeout:g} s of starting (last status "
                    f"'{job.status}'). It was not canceled: collect it later with Poll Job or "
                    f"'python -m scenario_api fetch {job_id}'",
                    job_id=job_id,
                )
            nap = min(nap, left)
        await asyncio.sleep(_bounded_nap(loop, nap, limits.until))


def _lost_contact(exc: TransportError | ServerError | RateLimitedError, job_id: str) -> ScenarioError:
    """The error of a watch that lost contact: the same kind as the last poll's, naming the job to collect later."""
    return type(exc)(
        f"Lost contact with Scenario while waiting for job {job_id}: {exc.message}. The job may "
        "still finish: collect it later with Poll Job or 'python -m scenario_api fetch'",
        status=exc.status,
        job_id=job_id,
    )


def _bounded_nap(loop: asyncio.AbstractEventLoop, nap: float, until: float | None) -> float:
    nap = max(0.0, nap)
    return nap if until is None else max(0.0, min(nap, until - loop.time()))


def _placeholder(job_id: str) -> Job:
    """What ``next_delay`` sees after a failed poll (no fresh job record)."""
    return Job(job_id=job_id, status="unknown")


async def _maybe_await(result: Any) -> None:
    if inspect.isawaitable(result):
        await result
