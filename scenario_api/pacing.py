"""When to look at a job next: an ETA-aware poll schedule (issue 9).

A fixed poll interval either wastes requests (short interval) or adds up to
one interval of latency after the job has finished (long interval). This
schedule uses what each poll says about the job itself:

* the server's own dates (``createdAt``, ``statusHistory``) give the exact
  moment each phase began; one offset, measured at submit, maps them to the
  local clock;
* while the job runs, its progress and the time it has been running give
  an estimate of when the running phase ends; a finalizing phase is predicted
  from earlier jobs of this process (as a fraction of the run), else from a
  small default;
* polls close in geometrically on that estimate (never more than a fraction
  of the time left, nor of the time already run, so a coarse or jumpy progress
  cannot send the next poll far past the real end), land just after it, and
  then continue with short, slowly growing gaps until the job ends;
* a reading that changed since the poll before bounds the run from both
  sides (the update came in between); the latest end these readings allow
  is a hard bound, earlier jobs of the same kind only a soft one;
* once earlier jobs taught how long finalizing lasts, the looks across the
  window of the run's end come closer than that, so the job is seen
  finalizing (its exact end, from ``statusHistory``) and the next look lands
  just after success;
* the request budget (``budget_period`` seconds of the job per poll, plus
  ``budget_extra`` and the final look) holds for every job, the first of its
  kind too: a poll that could not leave room for the final one becomes the
  last look, just after the latest plausible end;
* nothing is asked while the job is certainly still queued: the first poll
  waits for the shortest queue-plus-warm-up this process has seen (or
  ``first_poll``);
* throttling is honoured by the caller's retry policy (429 ``Retry-After`` /
  ``remainingSeconds``); the schedule never goes below ``min_gap``.

All constants are seconds in :class:`PollPolicy`; ``PollPolicy.scaled(f)``
multiplies every one of them (the bench runs compressed job clocks with a
compressed schedule). Learned phase statistics are plain numbers shared by
the whole process (:data:`HISTORY`), never tied to an event loop.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

__all__ = ["HISTORY", "EtaSchedule", "PhaseHistory", "PollPolicy", "job_kind", "server_time"]

QUEUED = ("pending", "queued")
TERMINAL = ("success", "failure", "canceled")


@dataclass(frozen=True)
class PollPolicy:
    """The schedule's constants, in seconds (see the module docstring)."""

    first_poll: float = 1.0  # first look when no earlier job says how long the queue lasts
    first_poll_max: float = 3.0  # ... and at most this late when earlier jobs queued longer
    min_gap: float = 0.2  # never poll more often than this
    max_gap: float = 10.0  # never wait longer than this between polls
    early_fraction: float = 1.0  # queued / warming up: next poll after this fraction of the time since submit
    approach: float = 0.5  # running: at most this fraction of the estimated time left
    approach_trusted: float = 0.85  # ... when the progress has proved steady (two readings agree)
    run_fraction: float = 0.3  # running, progress not proved steady: at most this fraction of the time already run
    agreement: float = 0.03  # a smooth progress: its readings imply run lengths this close (fraction) ...
    clear_progress: float = 0.05  # readings below this progress bound nothing (rounding divided by a tiny value)
    agreeing: int = 3  # ... this many in a row (two readings of a stale staircase can agree by chance)
    narrow: float = 0.1  # a plausible window at most this wide (fraction of the run) is trusted
    window_fraction: float = 0.1  # inside a wide plausible window: about 1/this looks across it
    landing: float = 0.06  # aim this long after the estimated end
    tail_gap: float = 0.25  # after the estimate passed: first gap, then growing
    tail_growth: float = 1.25
    tail_max: float = 1.0  # the tail never waits longer than this
    finalize_default: float = 0.0  # predicted finalizing time with no history (seconds)
    budget_extra: float = (
        2.0  # polls per job stay within job_seconds / budget_period + this (one more is the last look)
    )
    budget_period: float = 3.0  # ... one poll per this many seconds of the job (a duration: it scales)
    finalize_catch: float = 0.7  # looks this fraction of the learned finalizing time apart see the job finalizing
    last_look_finalize: float = 0.1  # a last look within the budget allows this fraction of the run for finalizing

    def scaled(self, factor: float) -> PollPolicy:
        """Every duration multiplied by ``factor`` (fractions and growth stay)."""
        unitless = {
            "early_fraction",
            "approach",
            "approach_trusted",
            "run_fraction",
            "tail_growth",
            "agreement",
            "narrow",
            "window_fraction",
            "budget_extra",
            "agreeing",
            "clear_progress",
            "last_look_finalize",
            "finalize_catch",
        }
        return replace(self, **{f.name: getattr(self, f.name) * factor for f in fields(self) if f.name not in unitless})


def server_time(text: Any) -> float | None:
    """Seconds since the epoch for an ISO 8601 date (``...Z``), else None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class PhaseHistory:
    """Phase lengths of finished jobs in this process: how long queues last, how long finalizing takes.

    Thread-safe plain numbers (no event loop involved), a bounded window of
    the most recent jobs.
    """

    MAX_KINDS = 200

    def __init__(self, window: int = 50) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._to_running: deque[float] = deque(maxlen=window)  # submit -> in-progress
        self._finalize_ratio: deque[float] = deque(maxlen=window)  # finalizing / running
        self._runs: dict[str, deque[float]] = {}  # job kind -> running-phase lengths

    def record(self, phases: Mapping[str, float], kind: str | None = None) -> None:
        """Learn from a successful job's phase start times (server seconds, keyed by status)."""
        created, running = phases.get("queued", phases.get("pending")), phases.get("in-progress")
        final, done = phases.get("finalizing"), phases.get("success")
        with self._lock:
            if created is not None and running is not None and running >= created:
                self._to_running.append(running - created)
            if running is not None and done is not None and done > running:
                end_run = final if final is not None else done
                if end_run > running:
                    self._finalize_ratio.append(max(0.0, done - end_run) / (end_run - running))
                    if kind is not None:
                        if kind not in self._runs and len(self._runs) >= self.MAX_KINDS:
                            self._runs.pop(next(iter(self._runs)))
                        self._runs.setdefault(kind, deque(maxlen=self._window)).append(end_run - running)

    def run_spread(self, kind: str | None) -> float:
        """Relative spread ((max - min) / 2 / median) of the recorded run lengths of a kind (0 for fewer than 2)."""
        with self._lock:
            runs = self._runs.get(kind) if kind is not None else None
            if not runs or len(runs) < 2:
                return 0.0
            return (max(runs) - min(runs)) / 2 / _median(runs)

    def run_length(self, kind: str | None) -> float | None:
        """Median running-phase length of earlier jobs of this kind (same model, size, steps, outputs)."""
        with self._lock:
            runs = self._runs.get(kind) if kind is not None else None
            return _median(runs) if runs else None

    def shortest_start(self) -> float | None:
        with self._lock:
            return min(self._to_running) if self._to_running else None

    def finalize_ratio(self) -> float | None:
        with self._lock:
            return _median(self._finalize_ratio) if self._finalize_ratio else None

    def clear(self) -> None:
        with self._lock:
            self._to_running.clear()
            self._finalize_ratio.clear()
            self._runs.clear()


HISTORY = PhaseHistory()


class EtaSchedule:
    """``next_delay(job, polls)`` for the job-watching loop, plus :meth:`first_delay` before the first poll.

    ``submitted_at`` is the local clock (``clock()``, monotonic by default)
    when the submit answer arrived; ``created_at`` the job's ``createdAt``
    from that answer. ``job`` objects only need ``status``, ``progress`` and
    ``status_history`` (``[{"date", "status"}]``).
    """

    def __init__(
        self,
        policy: PollPolicy | None = None,
        *,
        submitted_at: float | None = None,
        created_at: str | None = None,
        history: PhaseHistory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or PollPolicy()
        self.history = HISTORY if history is None else history
        self.clock = clock
        now = clock()
        self.submitted_at = now if submitted_at is None else submitted_at
        created = server_time(created_at)
        # local = server + offset; the submit answer came back just after the server created the job
        self.offset: float | None = None if created is None else self.submitted_at - created
        self.phases: dict[str, float] = {}  # status -> local start time
        self.tail_gap = self.policy.tail_gap
        self.recorded = False
        self.readings: list[tuple[float, float, float]] = []  # (progress, first seen, the poll before)
        self.stale = False
        self.last_poll: float | None = None
        self.polls = 0
        self.kind: str | None = None
        self.last_look: float | None = None  # local time by which the job has ended at the latest, if known
        self.latest_end: float | None = None  # the latest end of the run its progress readings allow (local)

    # ------------------------------------------------------------------ public

    def first_delay(self) -> float:
        """Seconds from submit to the first poll: while the job is certainly still queued, ask nothing."""
        learned = self.history.shortest_start()
        p = self.policy
        start = p.first_poll if learned is None else max(p.min_gap, min(p.first_poll_max, 0.9 * learned))
        return max(0.0, self.submitted_at + start - self.clock())

    def __call__(self, job: Any, polls: int = 0) -> float:
        now = self.clock()
        self.polls += 1
        status = str(getattr(job, "status", "") or "")
        self._learn_phases(job, now, status)
        if self.kind is None:
            self.kind = job_kind(getattr(job, "input", None))
        p = self.policy
        if status in TERMINAL or status == "unknown" or not status:
            if status == "success":
                self._record()
            return p.min_gap if status == "unknown" else 0.0
        if status in QUEUED or status == "warming-up":
            self.last_poll = now
            return self._clamp(p.early_fraction * (now - self.submitted_at))
        self.last_look = None
        try:
            if status == "in-progress":
                gap = self._running(job, now)
            elif status == "finalizing":
                gap = self._finalizing(now)
            else:
                gap = self._clamp(p.tail_gap)
            return self._within_budget(now, gap)
        finally:
            self.last_poll = now

    def predicted_end(self, job: Any) -> float | None:
        """Local clock time at which the job is expected to succeed at the latest (None while nothing says)."""
        window = self._run_window(job)
        run_start = self.phases.get("in-progress")
        if window is None or run_start is None:
            return None
        return window[1] + self._finalize_estimate(window[1] - run_start)

    # ------------------------------------------------------------------ phases

    def _clamp(self, gap: float) -> float:
        return min(self.policy.max_gap, max(self.policy.min_gap, gap))

    def _run_window(self, job: Any) -> tuple[float, float] | None:
        """Earliest and latest plausible local end of the running phase, or None while nothing says.

        A reading "progress v, first seen at t, not yet at the poll before
        (t0)" bounds the run length to [(t0 - start) / v, (t - start) / v]:
        a progress updated now and then (a stale staircase: one poll saw the
        same value twice) was true at some moment in between; a smooth
        progress is true at t, so its readings all give the same upper bound,
        which is then the answer. The window
        is the intersection over all readings, and over earlier jobs of the
        same kind (their spread); readings that contradict each other (a
        progress that misleads) leave only the latest one.
        """
        p = self.policy
        run_start = self.phases.get("in-progress")
        if run_start is None:
            return None
        now = self.phases.get("finalizing") or self.clock()
        progress = _progress(job)
        if progress is not None and progress > 0 and (not self.readings or self.readings[-1][0] != progress):
            before = self.last_poll if self.last_poll is not None and self.last_poll > run_start else run_start
            self.readings.append((min(1.0, progress), now, before))
        elif progress is not None and self.readings and progress < 1 and now > self.readings[-1][1]:
            self.stale = True  # the same value at two polls: a progress updated now and then
        bounds = [(max(0.0, t0 - run_start) / v, max(1e-3, t - run_start) / v) for v, t, t0 in self.readings if v > 0]
        clear = [b for v, b in zip((r[0] for r in self.readings), bounds, strict=True) if v >= p.clear_progress]
        window: tuple[float, float] | None = None
        self.latest_end = None
        if bounds:
            # A truthful progress never runs ahead: the run is at most the smallest upper bound. A tiny
            # progress divides the dates' rounding and the clock offset into a large error: only clear readings
            # count when there are any.
            usable = clear or bounds
            hi = min(b[1] for b in usable)
            self.latest_end = run_start + hi
            lo = min(hi, max(b[0] for b in usable))
            agree = [b[1] for b in clear][-p.agreeing :]
            if not self.stale and len(agree) >= p.agreeing and max(agree) - min(agree) <= p.agreement * hi:
                lo = hi  # smooth progress: its readings agree, the answer is exact
            window = (lo, hi)
        learned = self.history.run_length(self.kind)
        if learned is not None:
            spread = max(self.policy.narrow / 2, self.history.run_spread(self.kind))
            known = (learned * (1 - spread), learned * (1 + spread))
            if window is None:
                window = known
            else:  # earlier jobs narrow what the progress allows; where they contradict it, the progress wins
                lo, hi = max(window[0], known[0]), min(window[1], known[1])
                window = (lo, hi) if lo <= hi else window
        if window is None:
            return None
        return run_start + window[0], run_start + window[1]

    def _running(self, job: Any, now: float) -> float:
        p = self.policy
        run_start = self.phases.get("in-progress", now)
        ran = max(0.0, now - run_start)
        window = self._run_window(job)
        if window is None:  # no progress yet: keep looking at a pace set by how long it has run
            return self._clamp(max(p.run_fraction * ran, p.early_fraction * (now - self.submitted_at) / 2))
        latest = self.latest_end if self.latest_end is not None else window[1]  # earlier jobs are no hard bound
        self.last_look = latest + self._finalize_margin(latest - run_start)
        catch = self._finalize_catch(window[0] - run_start)
        if catch:  # look for the end of the run: a job seen finalizing tells its exact end (statusHistory)
            early, late = window
        else:  # look for the success itself
            early, late = (w + self._finalize_estimate(w - run_start) for w in window)
        left = early - now
        if left <= 0:
            if now > late:
                return self._tail()
            # inside the plausible window: dense when it is narrow, a few looks across it when it is wide,
            # and never more than the request budget left allows
            spread = max(p.tail_gap, p.window_fraction * (late - early), 0.0)
            spread = min(spread, max(p.tail_gap, p.run_fraction * ran))
            if catch:  # looks closer than the finalizing phase lasts see it, wherever in the window the run ends
                spread = catch
            # the budget is shared out up to the latest end the readings allow (earlier jobs are no hard bound)
            reach = max(late, self.last_look)
            spread = max(spread, (reach - now) / max(1.0, self._budget_left(reach)))
            return self._clamp(min(spread, late - now + p.landing))
        self.tail_gap = p.tail_gap
        if late - early <= p.narrow * max(p.min_gap, late - run_start):  # a narrow window: trust it
            step = left + p.landing if left <= p.max_gap else p.approach_trusted * left
        else:  # a wide one: close in slowly, never far beyond what the run so far suggests, within the budget
            step = min(p.approach * left, p.run_fraction * max(ran, p.min_gap))
            step = max(step, (late - now) / max(1.0, self._budget_left(late)))
        if left - step <= p.min_gap or left <= 2 * p.min_gap:
            step = left + p.landing  # close enough: land just after the earliest plausible end
        return self._clamp(step)

    def _finalizing(self, now: float) -> float:
        p = self.policy
        run_start, final_start = self.phases.get("in-progress"), self.phases.get("finalizing", now)
        if run_start is not None:
            end = final_start + self._finalize_estimate(final_start - run_start)
            self.last_look = final_start + self._finalize_margin(final_start - run_start)
            left = end - now
            if left > 0:
                self.tail_gap = p.tail_gap
                return self._clamp(left + p.landing)
        return self._tail()

    def _within_budget(self, now: float, gap: float) -> float:
        """``gap``, moved so that the next poll keeps the job within its request budget.

        The next poll (number k) leaves room for a final one only if the job
        has run ``budget_period * (k - budget_extra)`` by then (it is still
        running then, so its budget is at least that). A poll planned earlier
        becomes the last look: just after the latest plausible end (with room
        for finalizing), or at that safe moment if it comes first; a job
        already past every estimate waits for the safe moment.
        """
        p = self.policy
        safe_at = self.submitted_at + p.budget_period * (self.polls + 1 - p.budget_extra)
        if now + gap >= safe_at:
            return gap
        last = self.last_look
        if last is not None and last + p.landing >= now:  # the job can still end as estimated
            return self._clamp(min(safe_at, max(now + gap, last + p.landing)) - now)
        return self._clamp(safe_at - now)

    def _budget_left(self, end: float) -> float:
        """Polls still allowed if the job ends at ``end`` (local): its seconds / ``budget_period`` + 3 in all."""
        return (end - self.submitted_at) / self.policy.budget_period + self.policy.budget_extra - self.polls

    def _tail(self) -> float:
        gap = self.tail_gap
        self.tail_gap = min(self.policy.tail_max, self.tail_gap * self.policy.tail_growth)
        return self._clamp(gap)

    def _finalize_catch(self, run: float) -> float:
        """Gap between looks that sees a finalizing phase learned from earlier jobs (0: too short to aim at)."""
        if self.history.finalize_ratio() is None:
            return 0.0
        gap = self.policy.finalize_catch * self._finalize_estimate(run)
        return gap if gap >= self.policy.tail_gap else 0.0

    def _finalize_margin(self, run: float) -> float:
        """Finalizing time a last look allows: what earlier jobs taught, else a fraction of the run."""
        ratio = self.history.finalize_ratio()
        if ratio is None:
            return max(self.policy.finalize_default, self.policy.last_look_finalize * max(0.0, run))
        return ratio * max(0.0, run)

    def _finalize_estimate(self, run: float) -> float:
        ratio = self.history.finalize_ratio()
        return self.policy.finalize_default if ratio is None else ratio * max(0.0, run)

    def _learn_phases(self, job: Any, now: float, status: str) -> None:
        dated = _history(job)
        if dated and self.offset is not None:
            for name, server in dated:
                self.phases.setdefault(name, server + self.offset)
        if status and status not in self.phases:
            self.phases[status] = now  # first seen now (no dates): an upper bound of its start

    def _record(self) -> None:
        if self.recorded or self.offset is None:
            return
        self.recorded = True
        self.history.record({k: v - self.offset for k, v in self.phases.items()}, self.kind)


KIND_FIELDS = ("type", "modelId", "width", "height", "numInferenceSteps", "numSamples", "numOutputs")


def job_kind(echo: Any) -> str | None:
    """What makes two jobs run about as long: endpoint, model, size, steps, outputs (from ``metadata.input``)."""
    if not isinstance(echo, Mapping) or not echo.get("modelId"):
        return None
    return "|".join(str(echo.get(k, "")) for k in KIND_FIELDS)


def _median(values: Sequence[float]) -> float:
    """The median (``statistics`` costs its import for one function)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _progress(job: Any) -> float | None:
    value = getattr(job, "progress", None)
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _history(job: Any) -> list[tuple[str, float]]:
    entries: Sequence[Any] = getattr(job, "status_history", ()) or ()
    out = []
    for entry in entries:
        if isinstance(entry, Mapping):
            when = server_time(entry.get("date"))
            if when is not None and entry.get("status"):
                out.append((str(entry["status"]), when))
    return out
