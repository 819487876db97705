"""A damaged ledger file: salvage what can be read, move it aside, carry pending job ids into a fresh file."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .constants import MAX_SALVAGED
from .records import _JOB_ANY, LedgerError, _ids_json, decode_row
from .schema import _COLUMNS
from .text import scrub_text

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("scenario_api.ledger")

_JOB_BYTES = re.compile(rb"job_[A-Za-z0-9_-]{6,128}")


def _readable_pending_rows(path: Path) -> list[dict[str, Any]]:
    """The pending rows SQLite can still read from a damaged file (read-only), at most MAX_SALVAGED."""
    rows: list[dict[str, Any]] = []
    try:
        uri = path.resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=1.0)
        try:
            conn.row_factory = sqlite3.Row
            for raw in conn.execute(f"SELECT {_COLUMNS} FROM intents"):
                try:
                    record = decode_row(dict(raw))
                except LedgerError:
                    continue
                if record.pending:
                    rows.append(dict(raw))
                if len(rows) >= MAX_SALVAGED:
                    break
        finally:
            conn.close()
    except (sqlite3.Error, ValueError, OSError):
        pass
    return rows


def salvage(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(readable pending rows, every job id found in the bytes) of a damaged file."""
    rows = _readable_pending_rows(path)
    found: dict[str, None] = {}
    for suffix in ("", "-wal"):
        try:
            with open(str(path) + suffix, "rb") as fh:
                data = fh.read(64 * 1024 * 1024)
        except OSError:
            continue
        for match in _JOB_BYTES.finditer(data):
            found.setdefault(match.group().decode("ascii"), None)
            if len(found) >= MAX_SALVAGED:
                break
    return rows, list(found)


def _move_aside(path: Path, why: str) -> Path:
    """Rename the file (and its -wal / -shm) to ``<name>.damaged-<time>-<pid>``; the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}-{os.getpid()}")
    try:
        os.replace(path, aside)
        for suffix in ("-wal", "-shm"):
            extra = Path(str(path) + suffix)
            if extra.exists():
                os.replace(extra, Path(str(aside) + suffix))
    except OSError as exc:
        raise LedgerError(
            f"Scenario: the job ledger {path} is damaged ({why}) and could not be moved aside "
            f"({exc.strerror or type(exc).__name__}); move it away by hand"
        ) from None
    return aside


def recover(store: Store, why: str) -> None:
    """Move a damaged file aside (keeping it), start a fresh one, carry pending job ids over."""
    store.close_connections()
    rows, job_ids = salvage(store.path)
    aside = _move_aside(store.path, why)
    pending_ids = sorted({r["job_id"] for r in rows if r.get("job_id")})
    log.warning(
        "Scenario: the job ledger %s was damaged (%s); it was moved to %s and a fresh ledger started. "
        "Job ids that could be read from it: %s. Pending ones: %s. Check them with "
        "'python -m scenario_api fetch <job id>' or Poll Job",
        store.path,
        why,
        aside,
        ", ".join(job_ids) if job_ids else "none",
        ", ".join(pending_ids) if pending_ids else "none",
    )
    store.create_file()
    store.check_integrity()
    store.migrate()
    carry_over(store, rows, job_ids, aside)


def carry_over(store: Store, rows: list[dict[str, Any]], job_ids: list[str], aside: Path) -> None:
    """Write the salvaged pending rows, and the job ids found only in the bytes, as ``uncertain`` intents."""
    now = store.clock()
    note = scrub_text(f"salvaged from the damaged ledger {aside.name}", 200)
    carried: set[str] = set()
    with store.write() as c:
        for raw in rows:
            carried.update(_carry_row(c, raw, note, now))
        loose = [j for j in job_ids if j not in carried]
        for start in range(0, len(loose), 50):
            c.execute(
                "INSERT INTO intents (kind, state, fingerprint, account, endpoint, base_url, origin, candidates, "
                "note, created_at, updated_at, owner) VALUES ('submit', 'uncertain', ?, ?, '', '', 'salvaged', "
                "?, ?, ?, ?, '')",
                (
                    "0" * 64,
                    "acct_" + "0" * 24,
                    _ids_json(loose[start : start + 50], _JOB_ANY, "candidates"),
                    note + " (state unknown: these ids were found in its bytes)",
                    now,
                    now,
                ),
            )


def _carry_row(c: sqlite3.Connection, raw: dict[str, Any], note: str, now: float) -> list[str]:
    """One salvaged pending row as a fresh ``uncertain`` intent; the job ids it names."""
    record = decode_row(raw)
    job = record.job_id
    candidates = list(record.candidates) + ([job] if job else [])
    c.execute(
        "INSERT INTO intents (kind, state, fingerprint, account, endpoint, base_url, origin, prompt, "
        "seed, cost, candidates, note, created_at, first_sent_at, last_sent_at, updated_at, owner) "
        "VALUES (?, 'uncertain', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
        (
            record.kind,
            record.fingerprint,
            record.account,
            record.endpoint,
            record.base_url,
            record.origin,
            record.prompt,
            record.seed,
            record.cost,
            _ids_json(candidates, _JOB_ANY, "candidates"),
            note,
            record.created_at,
            record.first_sent_at,
            record.last_sent_at,
            now,
        ),
    )
    return candidates
