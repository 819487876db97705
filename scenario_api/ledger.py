"""The durable job ledger: every paid request written down before it is sent.

One SQLite file per user and machine (the standard library's ``sqlite3``, WAL
mode): ``<ComfyUI user dir>/scenario/ledger.sqlite3`` inside ComfyUI (the
nodes pass that path), ``$SCENARIO_STATE_DIR/ledger.sqlite3`` for the CLI,
defaulting to ``~/.local/state/scenario-controlnet/`` (``%LOCALAPPDATA%`` on
Windows). See :func:`default_path` and :func:`user_dir_ledger_path`.

An **intent** is one paid request (a generation submit or an upload). It is
written *before* the request is sent, with a fingerprint (:func:`fingerprint`:
the canonical body, endpoint, base URL and the account's key id, never the
secret; images by content hash), where it came from (a node and prompt, or the
CLI), the start of the prompt, the seed and the quoted cost. It then moves::

    submitting -> accepted (job id) | uncertain | refused
    accepted   -> succeeded | failed | canceled      (asset ids, download receipts)
    uncertain  -> accepted | refused | failed | canceled

(an upload goes straight from ``submitting`` to ``succeeded`` with its asset
id). A job id belongs to at most one intent, across threads and processes: the
``job_id`` column is UNIQUE and :meth:`Ledger.claim` says whether this intent
won. A job adopted by guessing (after a lost reply) yields to the intent whose
own reply named it; the displaced intent learns it through
:meth:`Ledger.owns` and must never cancel that job.

Safety properties:

* Short transactions, ``BEGIN IMMEDIATE`` for every read-then-write, a busy
  timeout, WAL with ``synchronous=NORMAL``: a ``kill -9`` at any moment leaves
  either the old or the new row, never half of one, and never a stuck lock
  (a power cut may drop the last few commits, never corrupt the file).
* One connection per thread (re-made after a ``fork``), so any number of
  threads and processes can share the file.
* It never stores a credential or a signed URL: the account is a hash of the
  key id, every URL-like text loses its query string and fragment, and
  signature-like ``name=value`` pairs are blanked (:func:`scrub_text`).
* Its size is bounded: finished records older than ``max_age_days``
  (``SCENARIO_LEDGER_MAX_AGE_DAYS``, default 30) are pruned on open and every
  few hundred writes; pending ones are kept three times as long, and their job
  ids are logged when they go.
* Hostile files: a symlink, FIFO or directory in place of the file is refused
  with a clear :class:`LedgerError`; a damaged file is moved aside (with the
  job ids that could still be read logged, and the pending ones carried into
  the fresh file as ``uncertain`` records) instead of being silently dropped.
* Rows read back are decoded defensively (:func:`decode_row`): a hand-edited
  or damaged row is skipped with a warning naming its row id, never its data.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import spec
from .errors import ScenarioError
from .safe_files import UnsafeFileError, check_regular_file, loads_json_object

__all__ = [
    "Ledger",
    "LedgerError",
    "LedgerRowError",
    "Record",
    "Receipt",
    "ClaimResult",
    "fingerprint",
    "canonical_json",
    "account_id",
    "scrub_text",
    "strip_url",
    "decode_row",
    "default_path",
    "user_dir_ledger_path",
    "max_age_days_from_env",
    "node_origin",
    "CLI_ORIGIN",
    "SUBMIT",
    "UPLOAD",
    "SUBMITTING",
    "ACCEPTED",
    "UNCERTAIN",
    "REFUSED",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
    "STATES",
    "PENDING_STATES",
    "TERMINAL_STATES",
    "SCHEMA_VERSION",
]

log = logging.getLogger("scenario_api.ledger")

LEDGER_FILENAME = "ledger.sqlite3"
STATE_SUBDIR = "scenario-controlnet"
COMFY_SUBDIR = "scenario"
ENV_STATE_DIR = "SCENARIO_STATE_DIR"
ENV_MAX_AGE = "SCENARIO_LEDGER_MAX_AGE_DAYS"
DEFAULT_MAX_AGE_DAYS = 30.0
PENDING_AGE_FACTOR = 3  # pending records outlive finished ones this many times
PRUNE_EVERY_WRITES = 500
DEFAULT_BUSY_TIMEOUT = 15.0
SQLITE_HEADER = b"SQLite format 3\x00"

SUBMIT, UPLOAD = "submit", "upload"
KINDS = (SUBMIT, UPLOAD)

SUBMITTING = "submitting"
ACCEPTED = "accepted"
UNCERTAIN = "uncertain"
REFUSED = "refused"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELED = "canceled"
STATES = (SUBMITTING, ACCEPTED, UNCERTAIN, REFUSED, SUCCEEDED, FAILED, CANCELED)
PENDING_STATES = (SUBMITTING, ACCEPTED, UNCERTAIN)
TERMINAL_STATES = (REFUSED, SUCCEEDED, FAILED, CANCELED)
_NEXT: dict[str, frozenset[str]] = {
    SUBMITTING: frozenset({ACCEPTED, UNCERTAIN, REFUSED, SUCCEEDED}),
    ACCEPTED: frozenset({SUCCEEDED, FAILED, CANCELED}),
    UNCERTAIN: frozenset({ACCEPTED, REFUSED, FAILED, CANCELED}),
}

CLI_ORIGIN = "cli"
PROMPT_CHARS = 80
MAX_TEXT = 500
MAX_IDS = 256  # asset ids / candidates kept per record
MAX_SALVAGED = 1000
MAX_REQUEST_CHARS = 32 * 1024

# ------------------------------------------------------------------ text hygiene

_TOKEN = re.compile(r"[^\s\"'<>]+")
_SECRET_PAIR = re.compile(
    r"(?i)\b(signature|policy|key-pair-id|x-amz-[a-z-]+|sig|token|access_token|api_secret|secret|password)"
    r"(\s*[=:]\s*)[^\s&\"'<>,;]+"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def strip_url(url: str) -> str:
    """``scheme://host/path`` of a URL: the query, fragment and user-info dropped."""
    text = str(url).strip()
    for sep in ("?", "#"):
        text = text.split(sep, 1)[0]
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}" if sep else text


def _strip_url_token(match: re.Match[str]) -> str:
    """One whitespace/quote-delimited token: from its ``//`` on, no user-info, query or fragment (linear time)."""
    token = match.group(0)
    start = token.find("//")
    if start < 0:
        return token
    head, rest = token[:start], token[start:]
    cuts = [i for i in (rest.find("?"), rest.find("#")) if i >= 0]
    if cuts:
        rest = rest[: min(cuts)]
    slash = rest.find("/", 2)
    authority = rest[2 : slash if slash >= 0 else len(rest)]
    if "@" in authority:
        rest = "//" + rest[2 + authority.rindex("@") + 1 :]
    return head + rest


def scrub_text(text: Any, limit: int = MAX_TEXT) -> str:
    """A copy of ``text`` safe to store: no URL query strings, no ``signature=...`` pairs, no control chars."""
    value = "" if text is None else str(text)
    value = _TOKEN.sub(_strip_url_token, value)
    value = _SECRET_PAIR.sub(lambda m: m.group(1) + m.group(2) + "<redacted>", value)
    value = _CONTROL.sub(" ", value)
    return value if len(value) <= limit else value[: limit - 3] + "..."


# ------------------------------------------------------------------ fingerprints


def account_id(api_key: str) -> str:
    """A stable, non-reversible id of the account behind an API key (the key itself is never stored)."""
    key = (api_key or "").strip()
    if not key:
        raise ValueError("account_id needs the API key id")
    return "acct_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]  # as Credentials.account_id


_MAX_CANON_DEPTH = 24


def _data_url_hash(value: str) -> str:
    head, sep, payload = value.partition(",")
    if not sep:
        return "sha256-text:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    if head.lower().endswith(";base64"):
        try:
            raw = base64.b64decode(payload.strip(), validate=False)
        except (binascii.Error, ValueError):
            return "sha256-text:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    else:
        raw = payload.encode("utf-8", "surrogatepass")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _canon(value: Any, images: Mapping[str, str], depth: int) -> Any:
    if depth > _MAX_CANON_DEPTH:
        raise ValueError("request body nested too deeply to fingerprint")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a request body with a non-finite number cannot be fingerprinted")
        return int(value) if value.is_integer() and abs(value) < 2**63 else value
    if isinstance(value, str):
        if value in images:
            return "sha256:" + images[value]
        if value[:5].lower() == "data:":
            return _data_url_hash(value)
        if value.startswith(("http://", "https://")):
            return strip_url(value)
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"request body keys must be strings, got {type(key).__name__}")
            out[key] = _canon(item, images, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_canon(item, images, depth + 1) for item in value]
    raise TypeError(f"cannot fingerprint a value of type {type(value).__name__}")


def canonical_json(body: Any, images: Mapping[str, str] | None = None) -> str:
    """One text per meaning of ``body``: sorted keys, no spaces, ``1.0`` == ``1``.

    Images are named by content: a data URL becomes ``sha256:<digest of its
    bytes>`` (its MIME label does not matter), and any string found in
    ``images`` (asset id -> sha256 hex of the uploaded bytes) becomes the same
    ``sha256:...``, so an image re-uploaded after a restart under a new asset
    id still fingerprints the same. http(s) URLs lose their query (a signed
    URL changes on every fetch). Non-finite numbers raise ValueError.
    """
    canon = _canon(body, dict(images or {}), 0)
    return json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def fingerprint(
    kind: str,
    endpoint: str,
    body: Any,
    *,
    base_url: str,
    account: str,
    project_id: str | None = None,
    images: Mapping[str, str] | None = None,
) -> str:
    """sha256 (hex) of what makes two paid requests "the same": kind, endpoint, body, base URL, account, project.

    ``account`` is :func:`account_id` of the key (never the secret). Same
    fingerprint + same account + a succeeded record = a result that can be
    served again instead of paid for again.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    payload = {
        "v": 1,
        "kind": kind,
        "endpoint": str(endpoint),
        "base": strip_url(base_url).rstrip("/"),
        "account": str(account),
        "project": project_id or None,
        "body": json.loads(canonical_json(body, images)),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def node_origin(node_id: Any, prompt_id: Any) -> str:
    """The origin text of an intent made by a ComfyUI node."""
    return scrub_text(f"node {node_id} prompt {prompt_id}", 200)


# ------------------------------------------------------------------ records

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


def decode_row(row: Mapping[str, Any]) -> Record:
    """A :class:`Record` from a row mapping; :class:`LedgerRowError` (naming the row id only) if any value is off."""
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
        fingerprint=fp or "",
        account=account or "",
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


# ------------------------------------------------------------------ paths and settings


def default_path(env: Mapping[str, str] | None = None) -> Path:
    """The CLI's ledger: ``$SCENARIO_STATE_DIR/ledger.sqlite3``, else the platform's user state folder."""
    env = os.environ if env is None else env
    state_dir = (env.get(ENV_STATE_DIR) or "").strip()
    if state_dir:
        return Path(state_dir).expanduser() / LEDGER_FILENAME
    if os.name == "nt" and (env.get("LOCALAPPDATA") or "").strip():
        return Path(env["LOCALAPPDATA"]) / STATE_SUBDIR / LEDGER_FILENAME
    xdg = (env.get("XDG_STATE_HOME") or "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / STATE_SUBDIR / LEDGER_FILENAME


def user_dir_ledger_path(user_dir: str | os.PathLike[str]) -> Path:
    """The ledger inside ComfyUI: ``<user dir>/scenario/ledger.sqlite3``."""
    return Path(user_dir) / COMFY_SUBDIR / LEDGER_FILENAME


def max_age_days_from_env(env: Mapping[str, str] | None = None) -> float:
    """``SCENARIO_LEDGER_MAX_AGE_DAYS`` (a positive finite number), else 30; a bad value is warned about."""
    env = os.environ if env is None else env
    text = (env.get(ENV_MAX_AGE) or "").strip()
    if not text:
        return DEFAULT_MAX_AGE_DAYS
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0 or value > 36500:
        log.warning("%s must be a number of days > 0; using %g", ENV_MAX_AGE, DEFAULT_MAX_AGE_DAYS)
        return DEFAULT_MAX_AGE_DAYS
    return value


def _hostname() -> str:
    return (socket.gethostname() or "localhost")[:64].replace(":", "_")


# ------------------------------------------------------------------ schema

SCHEMA_VERSION = 2

# Each entry upgrades the file from version i to i + 1 (applied in one transaction).
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE intents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            account TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            base_url TEXT NOT NULL,
            origin TEXT NOT NULL,
            prompt TEXT NOT NULL DEFAULT '',
            seed INTEGER,
            cost REAL,
            job_id TEXT UNIQUE,
            adopted INTEGER NOT NULL DEFAULT 0,
            candidates TEXT NOT NULL DEFAULT '[]',
            asset_ids TEXT NOT NULL DEFAULT '[]',
            note TEXT,
            created_at REAL NOT NULL,
            first_sent_at REAL,
            last_sent_at REAL,
            updated_at REAL NOT NULL,
            owner TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX intents_reuse ON intents (fingerprint, account, state, updated_at)",
        "CREATE INDEX intents_state ON intents (state, updated_at)",
    ),
    (
        """CREATE TABLE receipts (
            intent_id INTEGER NOT NULL REFERENCES intents (id) ON DELETE CASCADE,
            asset_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            path TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (intent_id, asset_id)
        )""",
        "CREATE INDEX intents_updated ON intents (updated_at)",
        # the canonical request (data URLs as content hashes), so `resume` can match a crashed send's job
        "ALTER TABLE intents ADD COLUMN request TEXT",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION
_OUR_TABLES = {"intents", "receipts", "sqlite_sequence"}

_COLUMNS = (
    "id, kind, state, fingerprint, account, endpoint, base_url, origin, prompt, seed, cost, job_id, adopted, "
    "candidates, asset_ids, note, created_at, first_sent_at, last_sent_at, updated_at, owner, request"
)


class _Corrupt(Exception):
    pass


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
_JOB_BYTES = re.compile(rb"job_[A-Za-z0-9_-]{6,128}")


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
        self._clock = clock
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._writes = 0
        self._owner = f"{_hostname()}:{os.getpid()}"
        self._closed = False
        self._open()
        if prune_on_open:
            self.prune()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    # -------------------------------------------------------------- opening

    @classmethod
    def open_default(cls, env: Mapping[str, str] | None = None, **kw: Any) -> Ledger:
        """The CLI's ledger (:func:`default_path`)."""
        return cls(default_path(env), **kw)

    def _check_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            candidate = Path(str(self.path) + suffix)
            try:
                check_regular_file(candidate, what="job ledger file")
            except UnsafeFileError as exc:
                raise LedgerError(
                    f"Scenario: {exc.message}. Move it away (or set {ENV_STATE_DIR} to another folder) and retry"
                ) from None

    def _open(self) -> None:
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise LedgerError(
                f"Scenario: cannot create the job ledger's folder {parent} ({exc.strerror or type(exc).__name__}); "
                f"set {ENV_STATE_DIR} to a writable folder"
            ) from None
        if not parent.is_dir():
            raise LedgerError(f"Scenario: the job ledger's folder {parent} is not a folder")
        self._check_files()
        self._create_file()
        try:
            self._check_integrity()
        except _Corrupt as exc:
            self._recover(str(exc))
        self._migrate()

    def _create_file(self) -> None:
        if self.path.exists():
            return
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
            os.close(fd)
        except FileExistsError:
            pass  # another process made it first
        except OSError as exc:
            raise LedgerError(
                f"Scenario: cannot create the job ledger {self.path} ({exc.strerror or type(exc).__name__}); "
                f"set {ENV_STATE_DIR} to a writable folder"
            ) from None

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise LedgerError(
                f"Scenario: cannot open the job ledger {self.path} ({type(exc).__name__}); "
                f"check its permissions or set {ENV_STATE_DIR} to another folder"
            ) from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            # WAL + NORMAL: a commit is in the WAL before it returns, so a killed process loses nothing; only
            # a power cut could drop the last few commits (FULL would fsync every write, slowing each submit).
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA trusted_schema = OFF")
        except sqlite3.Error:
            conn.close()
            raise
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise LedgerError(f"Scenario: the job ledger {self.path} was closed")
        local = self._local
        pid = os.getpid()
        conn = getattr(local, "conn", None)
        if conn is None or getattr(local, "pid", None) != pid:
            conn = self._connect()
            local.conn, local.pid = conn, pid
        return conn

    def _check_integrity(self) -> None:
        """Raise _Corrupt when the file is not a healthy SQLite database of ours."""
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        if size > 0:
            with open(self.path, "rb") as fh:
                header = fh.read(len(SQLITE_HEADER))
            if header != SQLITE_HEADER:
                raise _Corrupt("it is not an SQLite database")
        try:
            conn = self._connect()
            self._local.conn, self._local.pid = conn, os.getpid()
            if size == 0:  # a new file: settings that only take effect before the first table
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":  # switching needs a moment of exclusive access; only once per file
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    log.warning("job ledger %s: WAL mode unavailable (%s); continuing", self.path, mode)
            conn.execute("PRAGMA journal_size_limit = 4194304")
            result = conn.execute("PRAGMA quick_check").fetchall()
            if [tuple(r) for r in result] != [("ok",)]:
                raise _Corrupt("SQLite's integrity check failed")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower():
                raise LedgerError(
                    f"Scenario: the job ledger {self.path} stayed locked by another process for "
                    f"{self.busy_timeout:g} s; retry"
                ) from None
            raise _Corrupt(f"SQLite cannot read it ({type(exc).__name__})") from None
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"Scenario: the job ledger {self.path} was written by a newer version of the pack (schema {version}, "
                f"this version reads up to {SCHEMA_VERSION}); update the pack, or set {ENV_STATE_DIR} to another "
                "folder"
            )
        if version == 0 and tables - _OUR_TABLES:
            raise _Corrupt("it holds another program's tables")
        if version >= 1 and "intents" not in tables:
            raise _Corrupt("its tables are missing")

    def _migrate(self) -> None:
        conn = self._conn()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        with self._write() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]  # another process may have done it
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target - 1]:
                    c.execute(statement)
                c.execute(f"PRAGMA user_version = {target}")
            if version < SCHEMA_VERSION:
                log.debug("job ledger %s migrated from schema %d to %d", self.path, version, SCHEMA_VERSION)

    # -------------------------------------------------------------- damaged files

    def _salvage(self) -> tuple[list[dict[str, Any]], list[str]]:
        """(readable pending rows, every job id found in the bytes) of a damaged file."""
        rows: list[dict[str, Any]] = []
        try:
            uri = self.path.resolve().as_uri() + "?mode=ro"
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
        found: dict[str, None] = {}
        for suffix in ("", "-wal"):
            try:
                with open(str(self.path) + suffix, "rb") as fh:
                    data = fh.read(64 * 1024 * 1024)
            except OSError:
                continue
            for match in _JOB_BYTES.finditer(data):
                found.setdefault(match.group().decode("ascii"), None)
                if len(found) >= MAX_SALVAGED:
                    break
        return rows, list(found)

    def _recover(self, why: str) -> None:
        """Move a damaged file aside (keeping it), start a fresh one, carry pending job ids over."""
        self.close_connections()
        rows, job_ids = self._salvage()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{os.getpid()}")
        try:
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                extra = Path(str(self.path) + suffix)
                if extra.exists():
                    os.replace(extra, Path(str(aside) + suffix))
        except OSError as exc:
            raise LedgerError(
                f"Scenario: the job ledger {self.path} is damaged ({why}) and could not be moved aside "
                f"({exc.strerror or type(exc).__name__}); move it away by hand"
            ) from None
        pending_ids = sorted({r["job_id"] for r in rows if r.get("job_id")})
        log.warning(
            "Scenario: the job ledger %s was damaged (%s); it was moved to %s and a fresh ledger started. "
            "Job ids that could be read from it: %s. Pending ones: %s. Check them with "
            "'python -m scenario_api fetch <job id>' or Poll Job",
            self.path,
            why,
            aside,
            ", ".join(job_ids) if job_ids else "none",
            ", ".join(pending_ids) if pending_ids else "none",
        )
        self._create_file()
        self._check_integrity()
        self._migrate()
        self._carry_over(rows, job_ids, aside)

    def _carry_over(self, rows: list[dict[str, Any]], job_ids: list[str], aside: Path) -> None:
        now = self._clock()
        note = scrub_text(f"salvaged from the damaged ledger {aside.name}", 200)
        carried: set[str] = set()
        with self._write() as c:
            for raw in rows:
                record = decode_row(raw)
                job = record.job_id
                candidates = list(record.candidates) + ([job] if job else [])
                carried.update(candidates)
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

    # -------------------------------------------------------------- transactions

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: the write lock is taken up front, so read-then-write is atomic."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self._db_error(exc) from None
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise self._db_error(exc) from None
        self._writes += 1
        if self._writes % PRUNE_EVERY_WRITES == 0:
            with contextlib.suppress(LedgerError):
                self.prune()

    def _db_error(self, exc: sqlite3.Error) -> LedgerError:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return LedgerError(
                f"Scenario: the job ledger {self.path} stayed locked by another process for {self.busy_timeout:g} s"
            )
        if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text):
            return LedgerError(
                f"Scenario: the job ledger {self.path} is damaged; it will be moved aside (pending job ids kept) "
                "the next time it is opened"
            )
        return LedgerError(f"Scenario: the job ledger {self.path} could not be written ({type(exc).__name__})")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._db_error(exc) from None

    def _records(self, rows: Iterable[Any]) -> list[Record]:
        out: list[Record] = []
        for row in rows:
            try:
                out.append(decode_row(dict(row)))
            except LedgerRowError as exc:
                log.warning("%s; skipped", exc.message)
        return out

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
        stored = None
        if request is not None:
            stored = scrub_text(canonical_json(request), MAX_REQUEST_CHARS + 1)
            if len(stored) > MAX_REQUEST_CHARS:
                stored = None
        now = self._clock()
        with self._write() as c:
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
                    self._owner,
                    stored,
                ),
            )
            intent_id = int(cur.lastrowid or 0)
        return intent_id

    def mark_sent(self, intent_id: int) -> None:
        """Record a (re)send: ``first_sent_at`` is set once, ``last_sent_at`` every time."""
        now = self._clock()
        with self._write() as c:
            c.execute(
                "UPDATE intents SET first_sent_at = COALESCE(first_sent_at, ?), last_sent_at = ?, updated_at = ? "
                "WHERE id = ?",
                (now, now, now, intent_id),
            )

    def _state_of(self, c: sqlite3.Connection, intent_id: int) -> sqlite3.Row:
        row = c.execute("SELECT id, state, job_id, adopted, kind FROM intents WHERE id = ?", (intent_id,)).fetchone()
        if row is None:
            raise LedgerError(f"Scenario: the job ledger has no intent {intent_id} (pruned or another ledger file)")
        return row

    def _move(self, c: sqlite3.Connection, row: sqlite3.Row, state: str) -> bool:
        """Check a transition: False if already in ``state`` (idempotent), LedgerError if not allowed."""
        current = row["state"]
        if current == state:
            return False
        if state not in _NEXT.get(current, frozenset()):
            raise LedgerError(f"Scenario: ledger intent {row['id']} cannot go from {current} to {state}")
        return True

    def claim(self, intent_id: int, job_id: str, *, adopted: bool = False, cost: float | None = None) -> ClaimResult:
        """Give ``job_id`` to the intent; the answer says whether it won.

        A *direct* claim (the job id came in the reply to this intent's own
        request) beats an earlier *adopted* one (a guess after a lost reply):
        the guesser is displaced (back to ``uncertain``, with the job as a
        candidate). An adopted claim never takes a job someone holds. The
        intent goes to ``accepted``.
        """
        if not isinstance(job_id, str) or not spec.JOB_ID_RE.fullmatch(job_id):
            raise ValueError("job_id must be a job id like 'job_...'")
        now = self._clock()
        with self._write() as c:
            row = self._state_of(c, intent_id)
            if row["job_id"] == job_id:
                return ClaimResult(True)
            if row["job_id"] is not None and row["state"] != UNCERTAIN:
                raise LedgerError(f"Scenario: ledger intent {intent_id} already holds job {row['job_id']}")
            holder = c.execute("SELECT id, state, adopted FROM intents WHERE job_id = ?", (job_id,)).fetchone()
            displaced: int | None = None
            if holder is not None:
                if adopted or not holder["adopted"]:
                    return ClaimResult(False, holder=int(holder["id"]))
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
            if row["state"] != ACCEPTED:
                self._move(c, row, ACCEPTED)
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

    def owns(self, intent_id: int, job_id: str) -> bool:
        """True while ``job_id`` belongs to this intent (check before cancelling it)."""
        rows = self._read("SELECT 1 FROM intents WHERE id = ? AND job_id = ?", (intent_id, job_id))
        return bool(rows)

    def holder_of(self, job_id: str) -> int | None:
        """The intent holding ``job_id``, if any (any process on this machine)."""
        rows = self._read("SELECT id FROM intents WHERE job_id = ?", (job_id,))
        return int(rows[0]["id"]) if rows else None

    def claimed(self, job_ids: Iterable[str]) -> set[str]:
        """Which of ``job_ids`` some intent already holds."""
        ids = [j for j in job_ids if isinstance(j, str)]
        found: set[str] = set()
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            marks = ",".join("?" * len(chunk))
            found.update(
                r["job_id"] for r in self._read(f"SELECT job_id FROM intents WHERE job_id IN ({marks})", chunk)
            )
        return found

    def mark_uncertain(self, intent_id: int, reason: str, candidates: Iterable[str] = ()) -> None:
        """The outcome is unknown (no usable reply, no single matching job); ``candidates`` lists matching jobs."""
        now = self._clock()
        with self._write() as c:
            row = self._state_of(c, intent_id)
            if row["state"] == UNCERTAIN or self._move(c, row, UNCERTAIN):
                c.execute(
                    "UPDATE intents SET state = 'uncertain', candidates = ?, note = ?, updated_at = ? WHERE id = ?",
                    (_ids_json(candidates, _JOB_ANY, "candidates"), scrub_text(reason), now, intent_id),
                )

    def mark_refused(self, intent_id: int, reason: str) -> None:
        """Nothing was created: never sent, or Scenario refused it (4xx, out of credits, gave up after 429s)."""
        self._finish(intent_id, REFUSED, reason=reason)

    def mark_upload(self, intent_id: int, asset_id: str) -> None:
        """An upload intent's asset exists: ``succeeded`` with that asset id."""
        self._finish(intent_id, SUCCEEDED, asset_ids=[asset_id])

    def finish(self, intent_id: int, state: str, *, asset_ids: Iterable[str] = (), reason: str | None = None) -> None:
        """``succeeded`` (with the asset ids), ``failed`` or ``canceled``. Repeating the same end is harmless."""
        if state not in (SUCCEEDED, FAILED, CANCELED):
            raise ValueError("finish() takes succeeded, failed or canceled")
        self._finish(intent_id, state, asset_ids=asset_ids, reason=reason)

    def _finish(self, intent_id: int, state: str, *, asset_ids: Iterable[str] = (), reason: str | None = None) -> None:
        ids = list(asset_ids)
        now = self._clock()
        with self._write() as c:
            row = self._state_of(c, intent_id)
            if state == SUCCEEDED and row["kind"] == SUBMIT and row["job_id"] is None:
                raise LedgerError(f"Scenario: ledger intent {intent_id} cannot succeed without a job id")
            if not self._move(c, row, state) and not ids:
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
        """Record a downloaded file (asset id, sha256 hex of its bytes, size, and the local path if saved)."""
        if not _ASSET_ANY.fullmatch(asset_id or ""):
            raise ValueError("asset_id must be an asset id")
        if not _HEX64.fullmatch(sha256 or ""):
            raise ValueError("sha256 must be a hex digest")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("size must be a byte count")
        with self._write() as c:
            c.execute(
                "INSERT OR REPLACE INTO receipts (intent_id, asset_id, sha256, size, path, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    intent_id,
                    asset_id,
                    sha256,
                    size,
                    None if path is None else scrub_text(strip_url(str(path))),
                    self._clock(),
                ),
            )

    # -------------------------------------------------------------- reading

    def get(self, intent_id: int) -> Record | None:
        records = self._records(self._read(f"SELECT {_COLUMNS} FROM intents WHERE id = ?", (intent_id,)))
        return records[0] if records else None

    def by_job(self, job_id: str) -> Record | None:
        records = self._records(self._read(f"SELECT {_COLUMNS} FROM intents WHERE job_id = ?", (job_id,)))
        return records[0] if records else None

    def receipts(self, intent_id: int) -> list[Receipt]:
        out: list[Receipt] = []
        for row in self._read(
            "SELECT asset_id, sha256, size, path FROM receipts WHERE intent_id = ? ORDER BY created_at, asset_id",
            (intent_id,),
        ):
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
                out.append(Receipt(asset_id, digest, size, path))
            else:
                log.warning("The job ledger's receipt for intent %d is damaged; skipped", intent_id)
        return out

    def find_reusable(
        self, fingerprint: str, account: str, *, kind: str = SUBMIT, exclude: Iterable[int] = ()
    ) -> Record | None:
        """The newest succeeded intent with this fingerprint on this account that has asset ids.

        ``exclude`` skips intents already served in this run, so two identical
        requests map to two earlier results when there are two.
        """
        skip = set(exclude)
        rows = self._read(
            f"SELECT {_COLUMNS} FROM intents WHERE fingerprint = ? AND account = ? AND kind = ? AND state = ? "
            "ORDER BY updated_at DESC, id DESC LIMIT 50",
            (fingerprint, account, kind, SUCCEEDED),
        )
        for record in self._records(rows):
            if record.id not in skip and record.asset_ids:
                return record
        return None

    def find_resumable(self, fingerprint: str, account: str) -> list[Record]:
        """Unfinished intents with this fingerprint on this account whose process has died, newest first.

        A run that crashed (or was killed) mid-wait left them: running the same
        request again should pick their job up instead of paying again.
        """
        marks = ",".join("?" * len(PENDING_STATES))
        rows = self._read(
            f"SELECT {_COLUMNS} FROM intents WHERE fingerprint = ? AND account = ? AND kind = 'submit' "
            f"AND state IN ({marks}) ORDER BY created_at DESC, id DESC LIMIT 20",
            (fingerprint, account, *PENDING_STATES),
        )
        return [r for r in self._records(rows) if r.owner_alive() is False]

    def pending(self, *, account: str | None = None, limit: int = 1000) -> list[Record]:
        """Unfinished intents (submitting, accepted, uncertain), oldest first."""
        marks = ",".join("?" * len(PENDING_STATES))
        sql = f"SELECT {_COLUMNS} FROM intents WHERE state IN ({marks})"
        params: list[Any] = list(PENDING_STATES)
        if account is not None:
            sql += " AND account = ?"
            params.append(account)
        sql += " ORDER BY created_at, id LIMIT ?"
        params.append(int(limit))
        return self._records(self._read(sql, params))

    def recent(self, *, limit: int = 50, kind: str | None = None) -> list[Record]:
        """The newest intents, newest first."""
        sql = f"SELECT {_COLUMNS} FROM intents"
        params: list[Any] = []
        if kind is not None:
            sql += " WHERE kind = ?"
            params.append(kind)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(int(limit))
        return self._records(self._read(sql, params))

    def count(self) -> int:
        return int(self._read("SELECT COUNT(*) AS n FROM intents")[0]["n"])

    # -------------------------------------------------------------- size

    def prune(self, max_age_days: float | None = None) -> int:
        """Delete finished intents older than ``max_age_days`` (pending ones after three times that).

        Returns how many were deleted; the job ids of pending ones are logged.
        """
        days = self.max_age_days if max_age_days is None else float(max_age_days)
        now = self._clock()
        finished_before = now - days * 86400.0
        pending_before = now - days * 86400.0 * PENDING_AGE_FACTOR
        marks = ",".join("?" * len(PENDING_STATES))
        with self._write() as c:
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
                self._conn().execute("PRAGMA incremental_vacuum")
        return total

    # -------------------------------------------------------------- closing

    def close_connections(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def close(self) -> None:
        """Close every connection this object opened (any thread). Safe to call twice."""
        self.close_connections()
        self._closed = True

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
