"""Records as read back: the dataclasses, the errors, and the defensive decoding of a row."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import spec
from ..errors import ScenarioError
from ..safe_files import UnsafeFileError, loads_json_object
from .constants import (
    ACCEPTED,
    KINDS,
    MAX_IDS,
    MAX_REQUEST_CHARS,
    MAX_TEXT,
    PENDING_STATES,
    PROMPT_CHARS,
    STATES,
    SUBMIT,
    UPLOAD,
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ACCOUNT = re.compile(r"acct_[0-9a-f]{24}")


class LedgerError(ScenarioError):
    """The ledger cannot be used (its file is in a bad state, locked too long, or from a newer version)."""


class LedgerRowError(LedgerError):
    """A ledger row holds values the pack never writes; ``row_id`` names it (its data is never shown)."""

    def __init__(self, row_id: Any, problem: str) -> None:
        self.row_id = row_id if isinstance(row_id, int) and not isinstance(row_id, bool) else None
        where = f"row {self.row_id}" if self.row_id is not None else "a row"
        super().__init__(f"The job ledger's {where} is damaged: {problem}")


@dataclass(frozen=True)
class Receipt:
    """One downloaded file: the asset, the sha256 and size of the bytes, and where they went (if saved)."""

    asset_id: str
    sha256: str
    size: int
    path: str | None = None


@dataclass(frozen=True)
class Record:
    """One intent as stored. Times are Unix seconds (local clock)."""

    id: int
    kind: str
    state: str
    fingerprint: str
    account: str
    endpoint: str
    base_url: str
    origin: str
    prompt: str
    seed: int | None
    cost: float | None
    job_id: str | None
    adopted: bool
    candidates: tuple[str, ...]
    asset_ids: tuple[str, ...]
    note: str | None
    created_at: float
    first_sent_at: float | None
    last_sent_at: float | None
    updated_at: float
    owner: str
    request: Mapping[str, Any] | None = None  # the canonical request body, when it was stored

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.created_at)

    def owner_alive(self) -> bool | None:
        """Whether the process that wrote the intent still runs (None when it cannot be told)."""
        host, _, pid_text = self.owner.rpartition(":")
        if host != _hostname() or not pid_text.isdigit() or os.name == "nt":
            return None
        pid = int(pid_text)
        if pid == os.getpid():
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        except OSError:
            return None
        return True


def _text_field(row: Mapping[str, Any], name: str, *, limit: int = MAX_TEXT, optional: bool = False) -> str | None:
    value = row.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise LedgerRowError(row.get("id"), f"{name} is not text")
    if len(value) > limit:
        raise LedgerRowError(row.get("id"), f"{name} is too long")
    return value


def _number_field(row: Mapping[str, Any], name: str, *, optional: bool = False) -> float | None:
    value = row.get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LedgerRowError(row.get("id"), f"{name} is not a finite number")
    return float(value)


def _id_list(row: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    raw = row.get(name)
    if raw is None or raw == "":
        return ()
    if not isinstance(raw, str) or len(raw) > MAX_IDS * 140 + 2:
        raise LedgerRowError(row.get("id"), f"{name} is not a short JSON list")
    # A flat list of ids: refuse anything nested before parsing (no recursion on hostile input).
    if raw.count("[") != 1 or "{" in raw:
        raise LedgerRowError(row.get("id"), f"{name} is not a flat JSON list")
    try:
        items = json.loads(raw)
    except (ValueError, RecursionError):
        raise LedgerRowError(row.get("id"), f"{name} is not valid JSON") from None
    if not isinstance(items, list) or len(items) > MAX_IDS:
        raise LedgerRowError(row.get("id"), f"{name} is not a list of at most {MAX_IDS} ids")
    for item in items:
        if not isinstance(item, str) or not pattern.fullmatch(item):
            raise LedgerRowError(row.get("id"), f"{name} holds something that is not an id")
    return tuple(items)


def _request_field(row: Mapping[str, Any]) -> Mapping[str, Any] | None:
    raw = row.get("request")
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > MAX_REQUEST_CHARS:
        raise LedgerRowError(row.get("id"), "request is not short JSON text")
    try:
        return loads_json_object(raw, "ledger row", what="request of a", max_depth=8)
    except UnsafeFileError:
        raise LedgerRowError(row.get("id"), "request is not a JSON object") from None


def _identity(row: Mapping[str, Any]) -> tuple[int, str, str, str, str]:
    """(id, kind, state, fingerprint, account) of a row, each checked; LedgerRowError if one is off."""
    row_id = row.get("id")
    if isinstance(row_id, bool) or not isinstance(row_id, int) or row_id < 1:
        raise LedgerRowError(None, "its id is not a positive integer")
    kind = row.get("kind")
    if kind not in KINDS:
        raise LedgerRowError(row_id, "unknown kind")
    state = row.get("state")
    if state not in STATES:
        raise LedgerRowError(row_id, "unknown state")
    fp = _text_field(row, "fingerprint")
    if not _HEX64.fullmatch(fp or ""):
        raise LedgerRowError(row_id, "fingerprint is not a sha256 digest")
    account = _text_field(row, "account")
    if not _ACCOUNT.fullmatch(account or ""):
        raise LedgerRowError(row_id, "account is not an account id")
    return row_id, str(kind), str(state), fp or "", account or ""


def decode_row(row: Mapping[str, Any]) -> Record:
    """A :class:`Record` from a row mapping; :class:`LedgerRowError` (naming the row id only) if any value is off."""
    row_id, kind, state, fp, account = _identity(row)
    seed = row.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**63):
        raise LedgerRowError(row_id, "seed is not a non-negative integer")
    job_id = _text_field(row, "job_id", limit=140, optional=True)
    if job_id is not None and not spec.JOB_ID_RE.fullmatch(job_id):
        raise LedgerRowError(row_id, "job_id is not a job id")
    if state in (ACCEPTED,) and kind == SUBMIT and job_id is None:
        raise LedgerRowError(row_id, "an accepted submit without a job id")
    adopted = row.get("adopted", 0)
    if adopted not in (0, 1) or isinstance(adopted, float):
        raise LedgerRowError(row_id, "adopted is not 0 or 1")
    id_pattern = spec.ASSET_ID_RE if kind == UPLOAD else re.compile(r"asset_[A-Za-z0-9_-]{1,128}")
    created = _number_field(row, "created_at")
    updated = _number_field(row, "updated_at")
    assert created is not None and updated is not None
    return Record(
        id=row_id,
        kind=kind,
        state=state,
        fingerprint=fp,
        account=account,
        endpoint=_text_field(row, "endpoint", limit=200) or "",
        base_url=_text_field(row, "base_url", limit=300) or "",
        origin=_text_field(row, "origin", limit=200) or "",
        prompt=_text_field(row, "prompt", limit=PROMPT_CHARS) or "",
        seed=seed,
        cost=_number_field(row, "cost", optional=True),
        job_id=job_id,
        adopted=bool(adopted),
        candidates=_id_list(row, "candidates", re.compile(r"job_[A-Za-z0-9_-]{1,128}")),
        asset_ids=_id_list(row, "asset_ids", id_pattern),
        note=_text_field(row, "note", optional=True),
        created_at=created,
        first_sent_at=_number_field(row, "first_sent_at", optional=True),
        last_sent_at=_number_field(row, "last_sent_at", optional=True),
        updated_at=updated,
        owner=_text_field(row, "owner", limit=200) or "",
        request=_request_field(row),
    )


@dataclass(frozen=True)
class ClaimResult:
    """What :meth:`Ledger.claim` decided. ``won``: this intent now holds the job.

    ``holder``: the intent that holds it when this one lost; ``displaced``:
    the intent that had adopted it by guessing and lost it to this one's
    direct claim.
    """

    won: bool
    holder: int | None = None
    displaced: int | None = None

    def __bool__(self) -> bool:
        return self.won


def _hostname() -> str:
    return (socket.gethostname() or "localhost")[:64].replace(":", "_")


def _ids_json(ids: Iterable[str], pattern: re.Pattern[str], what: str) -> str:
    out: list[str] = []
    for item in ids:
        if not isinstance(item, str) or not pattern.fullmatch(item):
            raise ValueError(f"{what} must be ids like {pattern.pattern!r}")
        if item not in out:
            out.append(item)
    return json.dumps(out[:MAX_IDS])


_ASSET_ANY = re.compile(r"asset_[A-Za-z0-9_-]{1,128}")
_JOB_ANY = re.compile(r"job_[A-Za-z0-9_-]{1,128}")
