"""Where the ledger lives and how long it keeps records (from the environment)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

from .constants import COMFY_SUBDIR, DEFAULT_MAX_AGE_DAYS, ENV_MAX_AGE, ENV_STATE_DIR, LEDGER_FILENAME, STATE_SUBDIR

log = logging.getLogger("scenario_api.ledger")


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
