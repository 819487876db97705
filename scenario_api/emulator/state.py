"""Jobs and assets held by the emulator, behind one lock.

Jobs do not advance on their own: :meth:`Store.job_view` computes a job's
status from the time elapsed since submit (see :mod:`.timeline`). The first
read that finds a job successful creates its output assets, whose pixels are
rendered lazily on the first file download (so polling stays cheap).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import render, timeline
from .options import Timing
from .render import RenderSpec


def iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, as Scenario writes dates."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(16)}"


@dataclass
class AssetRecord:
    id: str
    width: int
    height: int
    metadata: dict[str, Any]
    created: float
    data: bytes | None = None
    spec: RenderSpec | None = None
    name: str | None = None
    hidden: bool = False
    parent_id: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def png(self) -> bytes:
        """The file's bytes, rendered once on first use (per-asset lock, not the store's)."""
        if self.data is None:
            with self.lock:
                if self.data is None and self.spec is not None:
                    self.data = render.render(self.spec)
        assert self.data is not None
        return self.data

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "mimeType": "image/png",
            "kind": "image",
            "status": "success",
            "metadata": dict(self.metadata),
            "createdAt": iso(self.created),
            "updatedAt": iso(self.created),
            "privacy": "private",
        }
        if self.name is not None:
            out["name"] = self.name
        if self.parent_id:
            out["parentId"] = self.parent_id
        if self.hidden:
            out["hide"] = True
        return out


@dataclass
class JobRecord:
    seq: int
    job_id: str
    created_wall: float
    created_mono: float
    timing: Timing
    input: dict[str, Any]
    cost: float
    outputs: list[AssetRecord]
    author_id: str
    owner_id: str
    fate: str = timeline.SUCCEED
    error: str | None = None
    hint: str | None = None
    canceled_at: float | None = None
    materialised: bool = False
    job_type: str = "controlnet"
    profile: str = timeline.LINEAR

    def snapshot(self, now_mono: float) -> timeline.Snapshot:
        return timeline.snapshot(
            now_mono - self.created_mono, self.timing, self.fate, self.canceled_at, self.profile, self.job_id
        )

    @property
    def limit_kind(self) -> str:
        """Which team limit the job counts against: ``custom`` jobs or ``inference`` (the legacy endpoints)."""
        return "custom" if self.job_type == "custom" else "inference"


class ParallelLimitReached(Exception):
    """A submit found ``limit`` jobs of its kind still running; a slot frees in ``remaining`` seconds."""

    def __init__(self, limit: int, remaining: float | None) -> None:
        super().__init__(f"{limit} parallel jobs already running")
        self.limit = limit
        self.remaining = remaining


class Store:
    """All mutable emulator data; every public method takes the lock."""

    def __init__(self, credits: float) -> None:
        self._lock = threading.RLock()
        self._jobs: dict[str, JobRecord] = {}
        self._assets: dict[str, AssetRecord] = {}
        self._permanent: set[str] = set()
        self._seq = 0
        self._balance = float(credits)

    # ------------------------------------------------------------------ credits

    @property
    def balance(self) -> float:
        with self._lock:
            return self._balance

    def set_balance(self, value: float) -> None:
        with self._lock:
            self._balance = float(value)

    def charge(self, cost: float) -> bool:
        """Deduct ``cost`` if the balance covers it."""
        with self._lock:
            if cost > self._balance:
                return False
            self._balance -= cost
            return True

    # ------------------------------------------------------------------ assets

    def add_asset(self, record: AssetRecord, *, permanent: bool = False) -> AssetRecord:
        with self._lock:
            self._assets[record.id] = record
            if permanent:
                self._permanent.add(record.id)
        return record

    def get_asset(self, asset_id: str) -> AssetRecord | None:
        with self._lock:
            self._materialise_all()
            return self._assets.get(asset_id)

    # ------------------------------------------------------------------ jobs

    def create_job(
        self,
        *,
        input_echo: dict[str, Any],
        cost: float,
        timing: Timing,
        outputs: list[AssetRecord],
        author_id: str,
        owner_id: str,
        fate: str = timeline.SUCCEED,
        error: str | None = None,
        hint: str | None = None,
        job_type: str = "controlnet",
        clock_skew: float = 0.0,
        profile: str = timeline.LINEAR,
        parallel_limit: int | None = None,
    ) -> JobRecord:
        """Store a new job; with ``parallel_limit``, raise :class:`ParallelLimitReached` instead when that
        many jobs of the same kind are not terminal yet (checked and created under one lock)."""
        with self._lock:
            if parallel_limit is not None:
                kind = "custom" if job_type == "custom" else "inference"
                self._check_parallel(kind, parallel_limit, time.monotonic())
            self._seq += 1
            job_id = new_id("job")
            for asset in outputs:
                asset.metadata["parentJobId"] = job_id
            record = JobRecord(
                seq=self._seq,
                job_id=job_id,
                created_wall=time.time() + clock_skew,  # dates are in the server's clock
                created_mono=time.monotonic(),
                timing=timing,
                input=input_echo,
                cost=cost,
                outputs=outputs,
                author_id=author_id,
                owner_id=owner_id,
                fate=fate,
                error=error,
                hint=hint,
                job_type=job_type,
                profile=profile,
            )
            self._jobs[job_id] = record
            return record

    def _check_parallel(self, kind: str, limit: int, now: float) -> None:
        active = [r for r in self._jobs.values() if r.limit_kind == kind and not r.snapshot(now).terminal]
        if len(active) < limit:
            return
        ends = []
        for r in active:
            end = timeline.end_offset(r.timing, r.fate)
            if end is not None and r.canceled_at is None:
                ends.append(r.created_mono + end - now)
        raise ParallelLimitReached(limit, max(0.0, min(ends)) if ends else None)

    def active_jobs(self, kind: str) -> int:
        """Non-terminal jobs counting against the ``inference`` or ``custom`` limit."""
        now = time.monotonic()
        with self._lock:
            return sum(1 for r in self._jobs.values() if r.limit_kind == kind and not r.snapshot(now).terminal)

    def job_view(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._jobs.get(job_id)
            return None if record is None else self._view(record, time.monotonic())

    def list_jobs(self) -> list[tuple[JobRecord, dict[str, Any]]]:
        """(record, view) pairs, newest first."""
        now = time.monotonic()
        with self._lock:
            records = sorted(self._jobs.values(), key=lambda r: r.seq, reverse=True)
            return [(r, self._view(r, now)) for r in records]

    def cancel(self, job_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """(view before the cancel, None) or (None/view, reason it cannot be canceled)."""
        now = time.monotonic()
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None:
                return None, "not found"
            view = self._view(record, now)
            if view["status"] in ("success", "failure", "canceled"):
                return view, f"Job is already {view['status']}"
            record.canceled_at = now - record.created_mono
            return view, None

    def reset(self, credits: float) -> None:
        """Forget jobs and non-permanent assets; keep the demo assets."""
        with self._lock:
            self._jobs.clear()
            self._assets = {k: v for k, v in self._assets.items() if k in self._permanent}
            self._balance = float(credits)

    # ------------------------------------------------------------------ views

    def _materialise_all(self) -> None:
        now = time.monotonic()
        for record in self._jobs.values():
            if not record.materialised and record.snapshot(now).status == "success":
                self._materialise(record)

    def _materialise(self, record: JobRecord) -> None:
        for asset in record.outputs:
            self._assets[asset.id] = asset
        record.materialised = True

    def _view(self, record: JobRecord, now_mono: float) -> dict[str, Any]:
        snap = record.snapshot(now_mono)
        if snap.status == "success" and not record.materialised:
            self._materialise(record)
        history = [{"date": iso(record.created_wall + offset), "status": status} for status, offset in snap.history]
        metadata: dict[str, Any] = {
            "input": dict(record.input),
            "assetIds": [a.id for a in record.outputs] if snap.status == "success" else [],
        }
        view: dict[str, Any] = {
            "jobId": record.job_id,
            "jobType": record.job_type,
            "status": snap.status,
            "progress": snap.progress,
            "statusHistory": history,
            "metadata": metadata,
            "billing": {"cuCost": record.cost, "cuDiscount": 0},
            "createdAt": iso(record.created_wall),
            "updatedAt": iso(record.created_wall + snap.last_change),
            "authorId": record.author_id,
            "ownerId": record.owner_id,
        }
        if snap.status == "failure":
            metadata["error"] = record.error
            view["error"] = record.error
            if record.hint:
                metadata["hint"] = record.hint
        return view
