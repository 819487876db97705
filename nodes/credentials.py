"""Where the nodes get the Scenario key from: the environment, then a file.

Credentials are never widgets: any widget value is saved in the workflow JSON
and in every output PNG's metadata. Order of precedence:

1. ``SCENARIO_API_KEY`` and ``SCENARIO_API_SECRET`` in ComfyUI's environment;
2. ``<ComfyUI user directory>/scenario/credentials.json`` holding
   ``{"api_key": "...", "api_secret": "...", "project_id": "..."}``
   (``project_id`` optional). The user directory survives pack updates, unlike
   the pack folder.

``SCENARIO_PROJECT_ID`` (env) wins over the file's ``project_id``;
``SCENARIO_API_URL`` sets the API base URL (the emulator, a proxy).

Nothing here logs or echoes a key or secret; errors name the variables and the
file path only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..scenario_api import (
    DEFAULT_BASE_URL,
    ENV_KEY,
    ENV_PROJECT,
    ENV_SECRET,
    ENV_URL,
    ConfigurationError,
    Credentials,
    Settings,
)
from ..scenario_api.safe_files import UnsafeFileError, read_json_object
from . import bridge

CREDENTIALS_SUBDIR = "scenario"
CREDENTIALS_FILENAME = "credentials.json"


def credentials_file(user_dir: Path | None = None) -> Path | None:
    """Path of the credentials file in ComfyUI's user directory (may not exist)."""
    base = user_dir if user_dir is not None else bridge.user_directory()
    if base is None:
        return None
    return Path(base) / CREDENTIALS_SUBDIR / CREDENTIALS_FILENAME


def missing_credentials_message(path: Path | None) -> str:
    """The complete, actionable text shown when no key is configured."""
    where = (
        f"or create the file {path} containing "
        '{"api_key": "<your key>", "api_secret": "<your secret>"} '
        '(optionally also "project_id")'
        if path is not None
        else "or create scenario/credentials.json in ComfyUI's user directory containing "
        '{"api_key": "<your key>", "api_secret": "<your secret>"}'
    )
    return (
        "Scenario: no Scenario API key configured. Create an API key in the Scenario web app "
        f"(Workspace settings > API keys), then either set the environment variables {ENV_KEY} and "
        f"{ENV_SECRET} for the ComfyUI process and restart ComfyUI, {where}. "
        "Keys are never stored in workflows"
    )


def _read_file(path: Path) -> Mapping[str, object]:
    """The credentials file's object ({} when absent); a ConfigurationError that never shows its content."""
    problem = None
    try:
        data = read_json_object(path, what="credentials file")
    except UnsafeFileError as exc:
        problem = exc.message
    if problem is not None:
        raise ConfigurationError(
            f"Scenario: {problem}. Expected a UTF-8 JSON file holding "
            '{"api_key": "...", "api_secret": "...", "project_id": "..." (optional)}'
        )
    return {} if data is None else data


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def resolve_settings(env: Mapping[str, str] | None = None, user_dir: Path | None = None) -> Settings:
    """Build :class:`Settings` for a node run, or raise a :class:`ConfigurationError` saying how to fix it."""
    env = os.environ if env is None else env
    base_url = _text(env.get(ENV_URL)) or DEFAULT_BASE_URL
    key, secret = _text(env.get(ENV_KEY)), _text(env.get(ENV_SECRET))
    project = _text(env.get(ENV_PROJECT))
    path = credentials_file(user_dir)
    if not (key and secret) or not project:
        try:
            file_data = _read_file(path) if path is not None else {}
        except ConfigurationError:
            if not (key and secret):
                raise
            file_data = {}  # the env holds the key; a broken file only matters for the project id
        if not (key and secret):
            key, secret = _text(file_data.get("api_key")), _text(file_data.get("api_secret"))
        if not project:
            project = _text(file_data.get("project_id"))
    if not (key and secret):
        raise ConfigurationError(missing_credentials_message(path))
    try:
        credentials = Credentials(key, secret)
        return Settings(base_url=base_url, credentials=credentials, project_id=project or None)
    except ConfigurationError as exc:
        if not exc.message.startswith("Scenario:"):
            exc.message = "Scenario: " + exc.message
        raise
