"""The intent state machine: every write that moves an intent (begin, send, claim, uncertain, finish, receipts)."""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from .. import spec
from .constants import (
    _NEXT,
    ACCEPTED,
    CANCELED,
    FAILED,
    KINDS,
    MAX_REQUEST_CHARS,
    PENDING_STATES,
    PROMPT_CHARS,
    REFUSED,
    SUBMIT,
    SUCCEEDED,
    UNCERTAIN,
)
from .fingerprints import canonical_json
from .records import _ACCOUNT, _ASSET_ANY, _HEX64, _JOB_ANY, ClaimResult, LedgerError, _ids_json
from .store import Store
from .text import scrub_text, strip_url

log = logging.getLogger("scenario_api.ledger")


def _check_intent(kind: str, fingerprint: str, account: str, seed: int | None, cost: float | None) -> None:
    """ValueError naming the first argument of a new intent that the pack never writes."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if not _HEX64.fullmatch(fingerprint):
        raise ValueError("fingerprint must be a sha256 hex digest (see fingerprint())")
    if not _ACCOUNT.fullmatch(account):
        raise ValueError("account must come from account_id(key)")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError("seed must be a non-negative integer")
    if cost is not None and (isinstance(cost, bool) or not math.isfinite(float(cost))):
        raise ValueError("cost must be a finite number")


def _stored_request(request: Mapping[str, Any] | None) -> str | None:
    """The canonical, scrubbed request text to keep, or None (none given, or over 32 KiB)."""
    if request is None:
        return None
    stored = scrub_text(canonical_json(request), MAX_REQUEST_CHARS + 1)
    return None if len(stored) > MAX_REQUEST_CHARS else stored


def _move(row: sqlite3.Row, state: str) -> bool:
    """Check a transition: False if already in ``state`` (idempotent), LedgerError if not allowed."""
    current = row["state"]
    if current == state:
        return False
    if state not in _NEXT.get(current, frozenset()):
        raise LedgerError(f"Scenario: ledger intent {row['id']} cannot go from {current} to {state}")
    return True


def _state_of(c: sqlite3.Connection, intent_id: int) -> sqlite3.Row:
    row = c.execute("SELECT id, state, job_id, adopted, kind FROM intents WHERE id = ?", (intent_id,)).fetchone()
    if row is None:
        raise LedgerError(f"Scenario: the job ledger has no intent {intent_id} (pruned or another ledger file)")
    return row


class IntentWriter:
    """The writes of a ledger: each one a short ``BEGIN IMMEDIATE`` transaction on ``store``."""

    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.owner = owner

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
        _check_intent(kind, fingerprint, account, seed, cost)
        stored = _stored_request(request)
        now = self.store.clock()
        with self.store.write() as c:
            cur = c.execute(
                "INSERT INTO intents (kind, state, fingerprint, account, endpoint, base_url, origin, prompt, seed, "
                "cost, created_at, updated_at, owner, request) "
                "VALUES (?, 'submitting', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    fingerprint,
                    account,
                    scrub_text(strip_url(endpoint), 200),
                    scrub_text(strip_url(base_url), 300),
                    scrub_text(origin, 200),
                    scrub_text(prompt, PROMPT_CHARS),
                    seed,
                    None if cost is None else float(cost),
                    now,
                    now,
                    self.owner,
                    stored,
                ),
            )
            intent_id = int(cur.lastrowid or 0)
        return intent_id

    def mark_sent(self, intent_id: int) -> None:
        now = self.store.clock()
        with self.store.write() as c:
            c.execute(
                "UPDATE intents SET first_sent_at = COALESCE(first_sent_at, ?), last_sent_at = ?, updated_at = ? "
                "WHERE id = ?",
                (now, now, now, intent_id),
            )

    def claim(self, intent_id: int, job_id: str, *, adopted: bool = False, cost: float | None = None) -> ClaimResult:
        if not isinstance(job_id, str) or not spec.JOB_ID_RE.fullmatch(job_id):
            raise ValueError("job_id must be a job id like 'job_...'")
        now = self.store.clock()
        with self.store.write() as c:
            row = _state_of(c, intent_id)
            if row["job_id"] == job_id:
                return ClaimResult(True)
            if row["job_id"] is not None and row["state"] != UNCERTAIN:
                raise LedgerError(f"Scenario: ledger intent {intent_id} already holds job {row['job_id']}")
            holder = c.execute("SELECT id, state, adopted FROM intents WHERE job_id = ?", (job_id,)).fetchone()
            displaced: int | None = None
            if holder is not None:
                if adopted or not holder["adopted"]:
                    return ClaimResult(False, holder=int(holder["id"]))
                displaced = _displace(c, holder, job_id, intent_id, now)
            if row["state"] != ACCEPTED:
                _move(row, ACCEPTED)
            if cost is not None and (isinstance(cost, bool) or not math.isfinite(float(cost))):
                cost = None
            c.execute(
                "UPDATE intents SET job_id = ?, adopted = ?, state = 'accepted', cost = COALESCE(?, cost), "
                "updated_at = ? WHERE id = ?",
                (job_id, int(adopted), None if cost is None else float(cost), now, intent_id),
            )
        if displaced is not None:
            log.warning(
                "job %s belongs to ledger intent %d (its reply named it); intent %d had adopted it and lost it",
                job_id,
                intent_id,
                displaced,
            )
        return ClaimResult(True, displaced=displaced)

    def mark_uncertain(self, intent_id: int, reason: str, candidates: Iterable[str] = ()) -> None:
        now = self.store.clock()
        with self.store.write() as c:
            row = _state_of(c, intent_id)
            if row["state"] == UNCERTAIN or _move(row, UNCERTAIN):
                c.execute(
                    "UPDATE intents SET state = 'uncertain', candidates = ?, note = ?, updated_at = ? WHERE id = ?",
                    (_ids_json(candidates, _JOB_ANY, "candidates"), scrub_text(reason), now, intent_id),
                )

    def mark_refused(self, intent_id: int, reason: str) -> None:
        self._finish(intent_id, REFUSED, reason=reason)

    def mark_upload(self, intent_id: int, asset_id: str) -> None:
        self._finish(intent_id, SUCCEEDED, asset_ids=[asset_id])

    def finish(self, intent_id: int, state: str, *, asset_ids: Iterable[str] = (), reason: str | None = None) -> None:
        if state not in (SUCCEEDED, FAILED, CANCELED):
            raise ValueError("finish() takes succeeded, failed or canceled")
        self._finish(intent_id, state, asset_ids=asset_ids, reason=reason)

    def _finish(self, intent_id: int, state: str, *, asset_ids: Iterable[str] = (), reason: str | None = None) -> None:
        ids = list(asset_ids)
        now = self.store.clock()
        with self.store.write() as c:
            row = _state_of(c, intent_id)
            if state == SUCCEEDED and row["kind"] == SUBMIT and row["job_id"] is None:
                raise LedgerError(f"Scenario: ledger intent {intent_id} cannot succeed without a job id")
            if not _move(row, state) and not ids:
                return
            c.execute(
                "UPDATE intents SET state = ?, asset_ids = CASE WHEN ? = '[]' THEN asset_ids ELSE ? END, "
                "note = COALESCE(?, note), updated_at = ? WHERE id = ?",
                (
                    state,
                    _ids_json(ids, _ASSET_ANY, "asset_ids"),
                    _ids_json(ids, _ASSET_ANY, "asset_ids"),
                    None if reason is None else scrub_text(reason),
                    now,
                    intent_id,
                ),
            )

    def add_receipt(
        self, intent_id: int, asset_id: str, sha256: str, size: int, path: str | os.PathLike[str] | None = None
    ) -> None:
        if not _ASSET_ANY.fullmatch(asset_id or ""):
            raise ValueError("asset_id must be an asset id")
        if not _HEX64.fullmatch(sha256 or ""):
            raise ValueError("sha256 must be a hex digest")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("size must be a byte count")
        with self.store.write() as c:
            c.execute(
                "INSERT OR REPLACE INTO receipts (intent_id, asset_id, sha256, size, path, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    intent_id,
                    asset_id,
                    sha256,
                    size,
                    None if path is None else scrub_text(strip_url(str(path))),
                    self.store.clock(),
                ),
            )


def _displace(c: sqlite3.Connection, holder: sqlite3.Row, job_id: str, intent_id: int, now: float) -> int:
    """Take ``job_id`` back from the intent that adopted it by guessing (it goes back to ``uncertain``)."""
    displaced = int(holder["id"])
    new_state = UNCERTAIN if holder["state"] in PENDING_STATES else holder["state"]
    c.execute(
        "UPDATE intents SET job_id = NULL, adopted = 0, state = ?, candidates = ?, note = ?, "
        "updated_at = ? WHERE id = ?",
        (
            new_state,
            json.dumps([job_id]),
            f"job {job_id} was claimed by intent {intent_id}, whose own reply named it",
            now,
            displaced,
        ),
    )
    return displaced
