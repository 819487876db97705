"""The ledger's reads: job ownership, records by id or job, receipts, reuse, resume, pending and recent."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .constants import PENDING_STATES, SUBMIT, SUCCEEDED
from .records import _ASSET_ANY, _HEX64, LedgerRowError, Receipt, Record, decode_row
from .schema import _COLUMNS
from .store import Store

log = logging.getLogger("scenario_api.ledger")


def decode_rows(rows: Iterable[Any]) -> list[Record]:
    """The rows that decode, as records; a damaged one is skipped with a warning naming its row id only."""
    out: list[Record] = []
    for row in rows:
        try:
            out.append(decode_row(dict(row)))
        except LedgerRowError as exc:
            log.warning("%s; skipped", exc.message)
    return out


def _receipt(row: Any) -> Receipt | None:
    asset_id, digest, size, path = row["asset_id"], row["sha256"], row["size"], row["path"]
    if (
        isinstance(asset_id, str)
        and _ASSET_ANY.fullmatch(asset_id)
        and isinstance(digest, str)
        and _HEX64.fullmatch(digest)
        and isinstance(size, int)
        and size >= 0
        and (path is None or isinstance(path, str))
    ):
        return Receipt(asset_id, digest, size, path)
    return None


class LedgerQueries:
    """Read-only questions to the ledger file behind ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _records(self, sql: str, params: Any = ()) -> list[Record]:
        return decode_rows(self.store.read(sql, params))

    def owns(self, intent_id: int, job_id: str) -> bool:
        rows = self.store.read("SELECT 1 FROM intents WHERE id = ? AND job_id = ?", (intent_id, job_id))
        return bool(rows)

    def holder_of(self, job_id: str) -> int | None:
        rows = self.store.read("SELECT id FROM intents WHERE job_id = ?", (job_id,))
        return int(rows[0]["id"]) if rows else None

    def claimed(self, job_ids: Iterable[str]) -> set[str]:
        ids = [j for j in job_ids if isinstance(j, str)]
        found: set[str] = set()
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            marks = ",".join("?" * len(chunk))
            found.update(
                r["job_id"] for r in self.store.read(f"SELECT job_id FROM intents WHERE job_id IN ({marks})", chunk)
            )
        return found

    def get(self, intent_id: int) -> Record | None:
        records = self._records(f"SELECT {_COLUMNS} FROM intents WHERE id = ?", (intent_id,))
        return records[0] if records else None

    def by_job(self, job_id: str) -> Record | None:
        records = self._records(f"SELECT {_COLUMNS} FROM intents WHERE job_id = ?", (job_id,))
        return records[0] if records else None

    def receipts(self, intent_id: int) -> list[Receipt]:
        out: list[Receipt] = []
        for row in self.store.read(
            "SELECT asset_id, sha256, size, path FROM receipts WHERE intent_id = ? ORDER BY created_at, asset_id",
            (intent_id,),
        ):
            receipt = _receipt(row)
            if receipt is not None:
                out.append(receipt)
            else:
                log.warning("The job ledger's receipt for intent %d is damaged; skipped", intent_id)
        return out

    def find_reusable(
        self, fingerprint: str, account: str, *, kind: str = SUBMIT, exclude: Iterable[int] = ()
    ) -> Record | None:
        skip = set(exclude)
        records = self._records(
            f"SELECT {_COLUMNS} FROM intents WHERE fingerprint = ? AND account = ? AND kind = ? AND state = ? "
            "ORDER BY updated_at DESC, id DESC LIMIT 50",
            (fingerprint, account, kind, SUCCEEDED),
        )
        for record in records:
            if record.id not in skip and record.asset_ids:
                return record
        return None

    def find_resumable(self, fingerprint: str, account: str) -> list[Record]:
        marks = ",".join("?" * len(PENDING_STATES))
        records = self._records(
            f"SELECT {_COLUMNS} FROM intents WHERE fingerprint = ? AND account = ? AND kind = 'submit' "
            f"AND state IN ({marks}) ORDER BY created_at DESC, id DESC LIMIT 20",
            (fingerprint, account, *PENDING_STATES),
        )
        return [r for r in records if r.owner_alive() is False]

    def pending(self, *, account: str | None = None, limit: int = 1000) -> list[Record]:
        marks = ",".join("?" * len(PENDING_STATES))
        sql = f"SELECT {_COLUMNS} FROM intents WHERE state IN ({marks})"
        params: list[Any] = list(PENDING_STATES)
        if account is not None:
            sql += " AND account = ?"
            params.append(account)
        sql += " ORDER BY created_at, id LIMIT ?"
        params.append(int(limit))
        return self._records(sql, params)

    def recent(self, *, limit: int = 50, kind: str | None = None) -> list[Record]:
        sql = f"SELECT {_COLUMNS} FROM intents"
        params: list[Any] = []
        if kind is not None:
            sql += " WHERE kind = ?"
            params.append(kind)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(int(limit))
        return self._records(sql, params)

    def count(self) -> int:
        return int(self.store.read("SELECT COUNT(*) AS n FROM intents")[0]["n"])
