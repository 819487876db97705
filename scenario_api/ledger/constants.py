"""The ledger's constants: kinds, states and their allowed moves, limits, file names and settings."""

from __future__ import annotations

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
