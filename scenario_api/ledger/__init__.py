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

The package, one concern per module: :mod:`.constants` (kinds, states,
limits), :mod:`.text` (scrubbing), :mod:`.fingerprints`, :mod:`.records`
(dataclasses, errors, row decoding), :mod:`.paths` (where, how long),
:mod:`.schema`, :mod:`.store` (SQLite connections, WAL, integrity,
migrations, transactions), :mod:`.damaged` (salvage and carry-over),
:mod:`.writes` (the intent state machine), :mod:`.queries`, :mod:`.pruning`
and :mod:`.core` (the :class:`Ledger` over all of them). Each loads on first
use of one of its names (module ``__getattr__``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..lazy import export_names, load_export

if TYPE_CHECKING:  # the names, for type checkers; at run time each module loads on first use
    from .constants import (
        ACCEPTED,
        CANCELED,
        CLI_ORIGIN,
        FAILED,
        PENDING_STATES,
        REFUSED,
        STATES,
        SUBMIT,
        SUBMITTING,
        SUCCEEDED,
        TERMINAL_STATES,
        UNCERTAIN,
        UPLOAD,
    )
    from .constants import KINDS as KINDS
    from .core import Ledger
    from .fingerprints import account_id, canonical_json, fingerprint, node_origin
    from .paths import default_path, max_age_days_from_env, user_dir_ledger_path
    from .records import ClaimResult, LedgerError, LedgerRowError, Receipt, Record, decode_row
    from .schema import _COLUMNS as _COLUMNS
    from .schema import _MIGRATIONS as _MIGRATIONS
    from .schema import SCHEMA_VERSION
    from .text import scrub_text, strip_url

_WHERE = {  # public name -> the module of this package that defines it
    "ACCEPTED": "constants",
    "CANCELED": "constants",
    "CLI_ORIGIN": "constants",
    "FAILED": "constants",
    "PENDING_STATES": "constants",
    "REFUSED": "constants",
    "STATES": "constants",
    "SUBMIT": "constants",
    "SUBMITTING": "constants",
    "SUCCEEDED": "constants",
    "TERMINAL_STATES": "constants",
    "UNCERTAIN": "constants",
    "UPLOAD": "constants",
    "KINDS": "constants",
    "Ledger": "core",
    "account_id": "fingerprints",
    "canonical_json": "fingerprints",
    "fingerprint": "fingerprints",
    "node_origin": "fingerprints",
    "default_path": "paths",
    "max_age_days_from_env": "paths",
    "user_dir_ledger_path": "paths",
    "ClaimResult": "records",
    "LedgerError": "records",
    "LedgerRowError": "records",
    "Receipt": "records",
    "Record": "records",
    "decode_row": "records",
    "_COLUMNS": "schema",
    "_MIGRATIONS": "schema",
    "SCHEMA_VERSION": "schema",
    "scrub_text": "text",
    "strip_url": "text",
}


def __getattr__(name: str) -> Any:
    """Load the module that defines ``name`` on first use (importing the pack stays cheap)."""
    return load_export(__name__, _WHERE, name)


def __dir__() -> list[str]:
    return export_names(__name__, _WHERE)


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
