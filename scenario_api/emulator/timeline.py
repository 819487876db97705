"""A job's status as a pure function of the time elapsed since it was submitted.

No background thread advances jobs: every read computes the status from the
job's timing snapshot, its fate (succeed, fail, stick) and an optional cancel
time. That keeps the emulator deterministic and free of races between a
ticking worker and the request threads.
"""

from __future__ import annotations

from dataclasses import dataclass

from .options import Timing

SUCCEED = "succeed"
FAIL = "fail"
STICK = "stick"

STUCK_PROGRESS = 0.42
FAIL_AT_PROGRESS = 0.5  # a failing job fails half way through its running phase


@dataclass(frozen=True)
class Snapshot:
    """What a poll sees: status, progress and the history of entered states (offsets in s)."""

    status: str
    progress: float
    history: tuple[tuple[str, float], ...]

    @property
    def terminal(self) -> bool:
        return self.status in ("success", "failure", "canceled")

    @property
    def last_change(self) -> float:
        return self.history[-1][1]


def _phases(timing: Timing) -> list[tuple[str, float]]:
    """(status, start offset) of each phase, empty phases skipped except queued."""
    out = [("queued", 0.0)]
    t = timing.queued
    if timing.warming_up > 0:
        out.append(("warming-up", t))
        t += timing.warming_up
    out.append(("in-progress", t))
    t += timing.running
    if timing.finalizing > 0:
        out.append(("finalizing", t))
        t += timing.finalizing
    return out


def _running_start(timing: Timing) -> float:
    return timing.queued + timing.warming_up


def _progress(elapsed: float, timing: Timing) -> float:
    """Linear 0->1 over the running phase, rounded so JSON stays short."""
    start = _running_start(timing)
    if elapsed <= start:
        return 0.0
    if timing.running <= 0:
        return 1.0
    return round(min(1.0, (elapsed - start) / timing.running), 4)


def snapshot(elapsed: float, timing: Timing, fate: str = SUCCEED, canceled_at: float | None = None) -> Snapshot:
    """The job as seen ``elapsed`` seconds after submit."""
    limit = elapsed if canceled_at is None else min(elapsed, canceled_at)
    end: tuple[str, float] | None = None
    if fate == FAIL:
        end = ("failure", _running_start(timing) + timing.running * FAIL_AT_PROGRESS)
    elif fate == SUCCEED:
        end = ("success", timing.total)

    history: list[tuple[str, float]] = []
    for status, start in _phases(timing):
        if end is not None and start >= end[1] and status != "queued":
            break
        if fate == STICK and status == "finalizing":
            break
        if start <= limit or status == "queued":
            history.append((status, start))
    progress = _progress(limit, timing)
    if fate == STICK:
        progress = min(progress, STUCK_PROGRESS)
    if end is not None and limit >= end[1]:
        history.append(end)
        progress = 1.0 if end[0] == "success" else min(progress, FAIL_AT_PROGRESS)
        return Snapshot(end[0], progress, tuple(history))
    if canceled_at is not None and elapsed >= canceled_at:
        history.append(("canceled", canceled_at))
        return Snapshot("canceled", progress, tuple(history))
    status = history[-1][0]
    if status in ("queued", "warming-up"):
        progress = 0.0
    return Snapshot(status, progress, tuple(history))
