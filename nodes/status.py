"""What the node shows while Scenario works: an honest bar and a status line.

The bar only moves on real progress: Scenario reports ``progress`` (0..1)
in ``in-progress`` and ``finalizing``; before that (waiting, queued,
starting) the bar stays put and the text says which state the job is in.
Missing progress is shown as "unknown", never as 0. Queue time and run time
are shown apart (a long queue is not a slow generation), then the cost in
creative units once Scenario reports it, and the job id(s) so a run can be
recovered with Scenario Poll Job.

With fan-out (several jobs for one node) the bar is the mean over the jobs
and the line summarises their states. Updates are throttled to about one per
second; the final state is always shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..scenario_api import STATUS_LABELS, TERMINAL_STATUSES, Job, JobStatus
from .bridge import Progress

PROGRESS_STATES = (JobStatus.IN_PROGRESS, JobStatus.FINALIZING)
RUNNING_STATES = (JobStatus.WARMING_UP, JobStatus.IN_PROGRESS, JobStatus.FINALIZING)
UPDATE_INTERVAL = 1.0


@dataclass
class JobView:
    """One job as the status line sees it (times from the local monotonic clock)."""

    job_id: str | None = None
    status: str = "submitting"
    progress: float | None = None
    cost: float | None = None
    submitted_at: float | None = None
    running_since: float | None = None
    ended_at: float | None = None

    def fraction(self) -> float:
        if self.status == JobStatus.SUCCESS:
            return 1.0
        if self.status in PROGRESS_STATES and self.progress and self.progress > 0:
            return min(1.0, self.progress)
        return 0.0

    def queued_seconds(self, now: float) -> float | None:
        if self.submitted_at is None:
            return None
        end = self.running_since or self.ended_at or now
        return max(0.0, end - self.submitted_at)

    def running_seconds(self, now: float) -> float | None:
        if self.running_since is None:
            return None
        return max(0.0, (self.ended_at or now) - self.running_since)


@dataclass
class StatusBoard:
    """Tracks every job of one node run and drives its :class:`Progress`."""

    progress: Progress
    count: int
    views: list[JobView] = field(default_factory=list)
    notes: tuple[str, ...] = ()  # said on every status line, e.g. "modality not used by this model (...)"
    _last_sent: float = float("-inf")
    _last_text: str | None = None

    def __post_init__(self) -> None:
        self.views = [JobView() for _ in range(self.count)]

    def submitted(self, index: int, job: Job, cost: float | None) -> None:
        v = self.views[index]
        v.job_id = job.job_id
        v.submitted_at = time.monotonic()
        v.cost = cost if cost is not None else job.cost
        self._observe(v, job)
        self.refresh(force=True)

    def observe(self, index: int, job: Job) -> None:
        self._observe(self.views[index], job)
        self.refresh()

    def _observe(self, v: JobView, job: Job) -> None:
        now = time.monotonic()
        if v.job_id is None:
            v.job_id = job.job_id
        if v.submitted_at is None:
            v.submitted_at = now
        if job.status in RUNNING_STATES and v.running_since is None:
            v.running_since = now
        if job.status in TERMINAL_STATUSES and v.ended_at is None:
            v.ended_at = now
        v.status = job.status
        v.progress = job.progress
        if job.cost is not None:
            v.cost = job.cost

    def note(self, index: int, status: str) -> None:
        """A local phase that is not a Scenario status (e.g. "downloading")."""
        self.views[index].status = status
        self.refresh(force=True)

    def text(self) -> str:
        now = time.monotonic()
        parts: list[str] = []
        if len(self.views) == 1:
            parts.append(_state_text(self.views[0]))
        else:
            counts: dict[str, int] = {}
            for v in self.views:
                counts[_label(v.status)] = counts.get(_label(v.status), 0) + 1
            summary = ", ".join(f"{n} {label}" for label, n in counts.items())
            active = [v for v in self.views if v.status in PROGRESS_STATES]
            pct = ""
            if active:
                known = [v.progress for v in active if v.progress and v.progress > 0]
                pct = f" ({round(100 * sum(known) / len(known))}%)" if known else " (progress unknown)"
            parts.append(f"{len(self.views)} jobs: {summary}{pct}")
        queued = [q for q in (v.queued_seconds(now) for v in self.views) if q is not None]
        running = [r for r in (v.running_seconds(now) for v in self.views) if r is not None]
        if queued:
            parts.append(f"queued {max(queued):.1f} s")
        if running:
            parts.append(f"running {max(running):.1f} s")
        costs = [v.cost for v in self.views if v.cost is not None]
        if costs:
            parts.append(f"{format_cu(sum(costs))} CU")
        ids = [v.job_id for v in self.views if v.job_id]
        if ids:
            parts.append(", ".join(ids))
        parts.extend(self.notes)
        return " | ".join(parts)

    def fraction(self) -> float:
        if not self.views:
            return 0.0
        return sum(v.fraction() for v in self.views) / len(self.views)

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_sent < UPDATE_INTERVAL:
            return
        self._last_sent = now
        frac = self.fraction()
        if frac > 0:
            self.progress.update(frac)
        text = self.text()
        if text != self._last_text:
            self._last_text = text
            self.progress.text(text)


def _label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def _state_text(v: JobView) -> str:
    label = _label(v.status)
    if v.status in PROGRESS_STATES:
        if v.progress is not None and v.progress > 0:
            return f"{label} {round(100 * min(1.0, v.progress))}%"
        return f"{label} (progress unknown)"
    return label


def format_cu(value: float) -> str:
    """Creative units for a message: at most two decimals, no trailing zeros ("1.5", "12")."""
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"
