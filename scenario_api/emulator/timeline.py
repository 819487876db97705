"""A job's status as a pure function of the time elapsed since it was submitted.

No background thread advances jobs: every read computes the status from the
job's timing snapshot, its fate (succeed, fail, stick) and an optional cancel
time. That keeps the emulator deterministic and free of races between a
ticking worker and the request threads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .options import PROGRESS_PROFILES as PROFILES
from .options import Timing

LINEAR, JUMPY, STALLED_THEN_FAST = PROFILES
STALL_FRACTION = 0.7  # stalled-then-fast: progress 0 for 70 % of the running phase, then 0 -> 1 in the rest
JUMPY_STEPS = 5  # jumpy: progress moves in this many irregular jumps

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


def _jumps(seed: str) -> list[float]:
    """The moments (fractions of the running phase) at which a jumpy job's progress is updated.

    Irregular, seeded per job; at each one the progress jumps to the true
    fraction done and then stays there (stale) until the next update, as a
    worker that reports only now and then does.
    """
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return sorted(0.05 + 0.9 * digest[i] / 255 for i in range(JUMPY_STEPS))


def profile_progress(fraction: float, profile: str = LINEAR, seed: str = "") -> float:
    """Progress (0..1) after ``fraction`` (0..1) of the running phase, for a progress profile.

    ``linear``: progress = fraction. ``jumpy``: a staircase of
    :data:`JUMPY_STEPS` updates at seeded, irregular moments (each to the
    fraction done at that moment). ``stalled-then-fast``: 0 until
    :data:`STALL_FRACTION`, then linear to 1 (a progress that misleads).
    """
    x = min(1.0, max(0.0, fraction))
    if x >= 1.0:
        return 1.0
    if profile == JUMPY:
        return max((at for at in _jumps(seed) if at <= x), default=0.0)
    if profile == STALLED_THEN_FAST:
        return max(0.0, (x - STALL_FRACTION) / (1.0 - STALL_FRACTION))
    return x


def _progress(elapsed: float, timing: Timing, profile: str = LINEAR, seed: str = "") -> float:
    """0->1 over the running phase following ``profile``, rounded so JSON stays short."""
    start = _running_start(timing)
    if elapsed <= start:
        return 0.0
    if timing.running <= 0:
        return 1.0
    return round(profile_progress((elapsed - start) / timing.running, profile, seed), 4)


def snapshot(
    elapsed: float,
    timing: Timing,
    fate: str = SUCCEED,
    canceled_at: float | None = None,
    profile: str = LINEAR,
    seed: str = "",
) -> Snapshot:
    """The job as seen ``elapsed`` seconds after submit (``profile``/``seed`` shape the progress only)."""
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
    progress = _progress(limit, timing, profile, seed)
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


def end_offset(timing: Timing, fate: str = SUCCEED) -> float | None:
    """Seconds after submit at which a job with this timing and fate becomes terminal (None: never)."""
    if fate == FAIL:
        return _running_start(timing) + timing.running * FAIL_AT_PROGRESS
    if fate == SUCCEED:
        return timing.total
    return None
