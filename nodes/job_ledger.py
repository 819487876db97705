"""The job ledger of the ComfyUI nodes: ``<user dir>/scenario/ledger.sqlite3``, and reuse of paid results.

Every Scenario client a node creates gets the ledger (:func:`client_options`),
so each paid request is written down before it is sent, claims hold across
ComfyUI and CLI processes on the machine, and a request that already
succeeded (same fingerprint, seed included, same account) is served again
instead of being paid for again: ComfyUI 0.38's RAM-pressure cache evicts
results, and a restart forgets them all.

* Reuse is on by default; ``SCENARIO_REUSE=0`` turns it off.
* A ledger that cannot be opened (a read-only user folder, a symlink or a
  FIFO in its place, a file from a newer pack) is logged once at WARNING and
  the nodes run without it (job ids are still logged and output).
* Outside ComfyUI (no user directory) there is no ledger.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..scenario_api import ledger as ledger_mod
from . import bridge

if TYPE_CHECKING:  # the ledger's store loads when a ledger is first opened
    from ..scenario_api.ledger import Ledger

log = logging.getLogger("scenario_controlnet")

ENV_REUSE = "SCENARIO_REUSE"

_lock = threading.Lock()
_open: dict[Path, Ledger] = {}
_failed: set[Path] = set()


def reuse_enabled(env: Mapping[str, str] | None = None) -> bool:
    """False when ``SCENARIO_REUSE`` is 0 / false / no / off."""
    env = os.environ if env is None else env
    return (env.get(ENV_REUSE) or "").strip().lower() not in ("0", "false", "no", "off")


def ledger_path(user_dir: Path | None = None) -> Path | None:
    base = user_dir if user_dir is not None else bridge.user_directory()
    return None if base is None else ledger_mod.user_dir_ledger_path(base)


def node_ledger(user_dir: Path | None = None) -> Ledger | None:
    """The ledger in ComfyUI's user directory (opened once per process), or None."""
    path = ledger_path(user_dir)
    if path is None:
        return None
    with _lock:
        if path in _open:
            return _open[path]
        if path in _failed:
            return None
        try:
            ledger = ledger_mod.Ledger(path)
        except ledger_mod.LedgerError as exc:
            _failed.add(path)
            log.warning("%s. The nodes run without the job ledger (no reuse, no crash record)", exc.message)
            return None
        _open[path] = ledger
        return ledger


def client_options() -> dict[str, Any]:
    """Keyword arguments for a node's :class:`ScenarioClient`: the ledger, and reuse unless turned off."""
    ledger = node_ledger()
    return {"ledger": ledger, "reuse": ledger is not None and reuse_enabled()}


def close_all() -> None:
    """Close every opened ledger (tests; ComfyUI never needs it)."""
    with _lock:
        ledgers = list(_open.values())
        _open.clear()
        _failed.clear()
    for ledger in ledgers:
        ledger.close()


def startup_report(user_dir: Path | None = None) -> str | None:
    """The start-up line about unfinished jobs in the ledger (None when there are none or no ledger)."""
    ledger = node_ledger(user_dir)
    if ledger is None:
        return None
    try:
        pending = ledger.pending()
    except ledger_mod.LedgerError as exc:
        return f"Scenario: the job ledger could not be read ({exc.message})"
    if not pending:
        return None
    ids = [r.job_id for r in pending if r.job_id] + [c for r in pending for c in r.candidates]
    shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
    return (
        f"Scenario: {len(pending)} job(s) in the ledger {ledger.path} did not finish "
        f"({shown or 'no job id yet'}). List them with 'python -m scenario_api jobs --local --pending "
        f"--ledger {ledger.path}' and collect them with 'python -m scenario_api resume --ledger {ledger.path}', "
        "or put a job id in Scenario Poll Job"
    )
