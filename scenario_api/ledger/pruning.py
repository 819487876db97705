"""Keeping the ledger small: finished records go after ``days``, pending ones after three times that."""

from __future__ import annotations

import contextlib
import logging
import sqlite3

from .constants import PENDING_AGE_FACTOR, PENDING_STATES
from .store import Store
from .text import scrub_text

log = logging.getLogger("scenario_api.ledger")


def prune(store: Store, days: float) -> int:
    """Delete finished intents older than ``days`` (pending ones after three times that); how many went.

    The job ids of the pending ones deleted are logged.
    """
    now = store.clock()
    finished_before = now - days * 86400.0
    pending_before = now - days * 86400.0 * PENDING_AGE_FACTOR
    marks = ",".join("?" * len(PENDING_STATES))
    with store.write() as c:
        old_pending = c.execute(
            f"SELECT id, job_id, candidates FROM intents WHERE state IN ({marks}) AND updated_at < ?",
            (*PENDING_STATES, pending_before),
        ).fetchall()
        deleted = c.execute(
            f"DELETE FROM intents WHERE state NOT IN ({marks}) AND updated_at < ?",
            (*PENDING_STATES, finished_before),
        ).rowcount
        if old_pending:
            c.execute(
                f"DELETE FROM intents WHERE state IN ({marks}) AND updated_at < ?",
                (*PENDING_STATES, pending_before),
            )
    if old_pending:
        ids = [str(r["job_id"] or r["candidates"]) for r in old_pending]
        log.warning(
            "Scenario: pruned %d unfinished ledger entries older than %g days (job ids: %s)",
            len(old_pending),
            days * PENDING_AGE_FACTOR,
            scrub_text(", ".join(ids), 2000),
        )
    total = deleted + len(old_pending)
    if total:
        with contextlib.suppress(sqlite3.Error):
            store.conn().execute("PRAGMA incremental_vacuum")
    return total
