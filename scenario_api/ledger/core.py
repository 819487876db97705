"""The :class:`Ledger`: one object over the file, its writes, its queries and its pruning."""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .constants import DEFAULT_BUSY_TIMEOUT, SUBMIT
from .paths import default_path, max_age_days_from_env
from .pruning import prune
from .queries import LedgerQueries
from .records import ClaimResult, Receipt, Record, _hostname
from .store import Store
from .writes import IntentWriter


class Ledger:
    """The ledger file at ``path``; safe to share between threads and processes.

    Opening creates the folder (mode 0700) and the file (0600) if needed,
    migrates the schema, checks the file, and prunes old records. Every
    method is synchronous and quick (milliseconds); an async caller may run
    them in a worker thread. ``clock`` (``time.time``) is for tests.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_age_days: float | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        clock: Any = time.time,
        prune_on_open: bool = True,
    ) -> None:
        self.path = Path(path)
        self.max_age_days = max_age_days_from_env() if max_age_days is None else float(max_age_days)
        if not math.isfinite(self.max_age_days) or self.max_age_days <= 0:
            raise ValueError("max_age_days must be a positive number")
        self.busy_timeout = float(busy_timeout)
        self._store = Store(self.path, busy_timeout=self.busy_timeout, clock=clock)
        self._store.every_writes = self.prune
        self._writer = IntentWriter(self._store, f"{_hostname()}:{os.getpid()}")
        self._queries = LedgerQueries(self._store)
        self._store.open()
        if prune_on_open:
            self.prune()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    @classmethod
    def open_default(cls, env: Mapping[str, str] | None = None, **kw: Any) -> Ledger:
        """The CLI's ledger (:func:`default_path`)."""
        return cls(default_path(env), **kw)

    def _conn(self) -> sqlite3.Connection:
        return self._store.conn()

    # -------------------------------------------------------------- intents

    def begin(
        self,
        *,
        kind: str,
        fingerprint: str,
        account: str,
        endpoint: str,
        base_url: str,
        origin: str,
        prompt: str = "",
        seed: int | None = None,
        cost: float | None = None,
        request: Mapping[str, Any] | None = None,
    ) -> int:
        """Write a new intent in state ``submitting`` (before anything is sent); returns its id.

        ``request`` (the body as sent, asset ids as they are) is kept in canonical form, data URLs
        as content hashes and URLs without their query, when it fits in 32 KiB.
        """
        return self._writer.begin(
            kind=kind,
            fingerprint=fingerprint,
            account=account,
            endpoint=endpoint,
            base_url=base_url,
            origin=origin,
            prompt=prompt,
            seed=seed,
            cost=cost,
            request=request,
        )

    def mark_sent(self, intent_id: int) -> None:
        """Record a (re)send: ``first_sent_at`` is set once, ``last_sent_at`` every time."""
        self._writer.mark_sent(intent_id)

    def claim(self, intent_id: int, job_id: str, *, adopted: bool = False, cost: float | None = None) -> ClaimResult:
        """Give ``job_id`` to the intent; the answer says whether it won.

        A *direct* claim (the job id came in the reply to this intent's own
        request) beats an earlier *adopted* one (a guess after a lost reply):
        the guesser is displaced (back to ``uncertain``, with the job as a
        candidate). An adopted claim never takes a job someone holds. The
        intent goes to ``accepted``.
        """
        return self._writer.claim(intent_id, job_id, adopted=adopted, cost=cost)

    def owns(self, intent_id: int, job_id: str) -> bool:
        """True while ``job_id`` belongs to this intent (check before cancelling it)."""
        return self._queries.owns(intent_id, job_id)

    def holder_of(self, job_id: str) -> int | None:
        """The intent holding ``job_id``, if any (any process on this machine)."""
        return self._queries.holder_of(job_id)

    def claimed(self, job_ids: Iterable[str]) -> set[str]:
        """Which of ``job_ids`` some intent already holds."""
        return self._queries.claimed(job_ids)

    def mark_uncertain(self, intent_id: int, reason: str, candidates: Iterable[str] = ()) -> None:
        """The outcome is unknown (no usable reply, no single matching job); ``candidates`` lists matching jobs."""
        self._writer.mark_uncertain(intent_id, reason, candidates)

    def mark_refused(self, intent_id: int, reason: str) -> None:
        """Nothing was created: never sent, or Scenario refused it (4xx, out of credits, gave up after 429s)."""
        self._writer.mark_refused(intent_id, reason)

    def mark_upload(self, intent_id: int, asset_id: str) -> None:
        """An upload intent's asset exists: ``succeeded`` with that asset id."""
        self._writer.mark_upload(intent_id, asset_id)

    def finish(self, intent_id: int, state: str, *, asset_ids: Iterable[str] = (), reason: str | None = None) -> None:
        """``succeeded`` (with the asset ids), ``failed`` or ``canceled``. Repeating the same end is harmless."""
        self._writer.finish(intent_id, state, asset_ids=asset_ids, reason=reason)

    def add_receipt(
        self, intent_id: int, asset_id: str, sha256: str, size: int, path: str | os.PathLike[str] | None = None
    ) -> None:
        """Record a downloaded file (asset id, sha256 hex of its bytes, size, and the local path if saved)."""
        self._writer.add_receipt(intent_id, asset_id, sha256, size, path)

    # -------------------------------------------------------------- reading

    def get(self, intent_id: int) -> Record | None:
        return self._queries.get(intent_id)

    def by_job(self, job_id: str) -> Record | None:
        return self._queries.by_job(job_id)

    def receipts(self, intent_id: int) -> list[Receipt]:
        return self._queries.receipts(intent_id)

    def find_reusable(
        self, fingerprint: str, account: str, *, kind: str = SUBMIT, exclude: Iterable[int] = ()
    ) -> Record | None:
        """The newest succeeded intent with this fingerprint on this account that has asset ids.

        ``exclude`` skips intents already served in this run, so two identical
        requests map to two earlier results when there are two.
        """
        return self._queries.find_reusable(fingerprint, account, kind=kind, exclude=exclude)

    def find_resumable(self, fingerprint: str, account: str) -> list[Record]:
        """Unfinished intents with this fingerprint on this account whose process has died, newest first.

        A run that crashed (or was killed) mid-wait left them: running the same
        request again should pick their job up instead of paying again.
        """
        return self._queries.find_resumable(fingerprint, account)

    def pending(self, *, account: str | None = None, limit: int = 1000) -> list[Record]:
        """Unfinished intents (submitting, accepted, uncertain), oldest first."""
        return self._queries.pending(account=account, limit=limit)

    def recent(self, *, limit: int = 50, kind: str | None = None) -> list[Record]:
        """The newest intents, newest first."""
        return self._queries.recent(limit=limit, kind=kind)

    def count(self) -> int:
        return self._queries.count()

    # -------------------------------------------------------------- size and closing

    def prune(self, max_age_days: float | None = None) -> int:
        """Delete finished intents older than ``max_age_days`` (pending ones after three times that).

        Returns how many were deleted; the job ids of pending ones are logged.
        """
        return prune(self._store, self.max_age_days if max_age_days is None else float(max_age_days))

    def close_connections(self) -> None:
        self._store.close_connections()

    def close(self) -> None:
        """Close every connection this object opened (any thread). Safe to call twice."""
        self._store.close_connections()
        self._store.closed = True

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
