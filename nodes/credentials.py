"""Where the nodes get the Scenario key from: the environment, then a file.

Credentials are never widgets: any widget value is saved in the workflow JSON
and in every output PNG's metadata. Order of precedence:

1. ``SCENARIO_API_KEY`` and ``SCENARIO_API_SECRET`` in ComfyUI's environment
   (else the official SDK's ``SCENARIO_SDK_API_KEY`` / ``SCENARIO_SDK_API_SECRET``);
2. ``<ComfyUI user directory>/scenario/credentials.json`` holding
   ``{"api_key": "...", "api_secret": "...", "project_id": "..."}``
   (``project_id`` optional). The user directory survives pack updates, unlike
   the pack folder.

``SCENARIO_PROJECT_ID`` (env) wins over the file's ``project_id``;
``SCENARIO_API_URL`` sets the API base URL (the emulator, a proxy).

The file is written by :func:`save_credentials` (the *Settings > Scenario*
dialog posts to ``POST /scenario/credentials``): atomically, owner-only (0600
in a 0700 folder). :func:`credentials_status` says where the key comes from,
showing only the key's last 4 characters.

Nothing here logs or echoes a key or secret; errors name the variables and the
file path only.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..scenario_api import (
    DEFAULT_BASE_URL,
    ENV_KEY,
    ENV_PROJECT,
    ENV_SDK_KEY,
    ENV_SDK_SECRET,
    ENV_SECRET,
    ENV_URL,
    ConfigurationError,
    Credentials,
    Settings,
    ValidationError,
    check_key_pair,
    env_key_pair,
    spec,
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
        f"{ENV_SECRET} for the ComfyUI process and restart ComfyUI, {where}, or enter them in "
        "ComfyUI under Settings > Scenario. Keys are never stored in workflows"
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
    pair = env_key_pair(env)
    key, secret = (pair[0], pair[1]) if pair is not None else ("", "")
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


# --------------------------------------------------------------------------- the Settings dialog's side

FILE_MODE = 0o600
DIR_MODE = 0o700


def _last4(key: str) -> str:
    return key[-4:] if len(key) >= 8 else ""  # a very short key would be half shown: show nothing


def _owner_only(path: Path) -> bool | None:
    """True when ``path`` is readable by its owner only; ``None`` where POSIX modes mean nothing (Windows)."""
    if os.name != "posix":
        return None
    try:
        return (path.stat().st_mode & 0o077) == 0
    except OSError:
        return None


def credentials_status(env: Mapping[str, str] | None = None, user_dir: Path | None = None) -> dict[str, Any]:
    """Where the key comes from, for the Settings panel; never the secret.

    ``source`` is ``"env"`` (``env_key`` names the variable), ``"file"`` or
    ``None``; ``env_wins`` is True while an environment pair is set (a saved
    file is then ignored). ``key_last4`` is the active key's last 4
    characters (empty for keys under 8 characters). ``file`` describes the
    saved file: whether it exists, its path, and whether only its owner can
    read it.
    """
    env = os.environ if env is None else env
    path = credentials_file(user_dir)
    pair = env_key_pair(env)
    file_data: Mapping[str, object] = {}
    file_error = None
    if path is not None:
        try:
            file_data = _read_file(path)
        except ConfigurationError as exc:
            file_error = exc.message
    file_key, file_secret = _text(file_data.get("api_key")), _text(file_data.get("api_secret"))
    env_project = _text(env.get(ENV_PROJECT))
    file_project = _text(file_data.get("project_id"))
    answer: dict[str, Any] = {
        "configured": False,
        "source": None,
        "env_key": None,
        "env_wins": pair is not None,
        "env_names": [[ENV_KEY, ENV_SECRET], [ENV_SDK_KEY, ENV_SDK_SECRET]],
        "key_last4": "",
        "project_id": env_project or file_project or None,
        "project_source": "env" if env_project else ("file" if file_project else None),
        "file": {
            "path": str(path) if path is not None else None,
            "present": bool(path is not None and path.is_file()),
            "configured": bool(file_key and file_secret),
            "key_last4": _last4(file_key) if file_key and file_secret else "",
            "owner_only": _owner_only(path) if path is not None and path.is_file() else None,
        },
    }
    if file_error:
        answer["file"]["error"] = file_error
    if pair is not None:
        answer.update(configured=True, source="env", env_key=pair[2], key_last4=_last4(pair[0]))
    elif file_key and file_secret:
        answer.update(configured=True, source="file", key_last4=_last4(file_key))
    return answer


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename), readable by the owner only."""
    folder = path.parent
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if os.name == "posix":
        os.chmod(folder, DIR_MODE)  # our own folder: tighten it even if it already existed
    fd, tmp = tempfile.mkstemp(prefix=".credentials-", suffix=".tmp", dir=folder)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if os.name == "posix":
                os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if os.name == "posix":
        with contextlib.suppress(OSError):  # make the rename durable; not every file system allows it
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def _no_user_dir() -> ConfigurationError:
    return ConfigurationError("Scenario: ComfyUI's user directory is unknown, so the key cannot be saved")


def save_credentials(
    api_key: object, api_secret: object, project_id: object = None, user_dir: Path | None = None
) -> Path:
    """Store a key pair (and optional project id) in the user-directory file; returns its path.

    An empty ``api_key`` keeps the saved key; an empty ``api_secret`` keeps the
    saved secret when the key is unchanged (the dialog never shows the secret,
    so changing only the project id must not require typing it again). The
    values are checked first (:func:`scenario_api.config.check_key_pair`,
    the project id as an id); errors name the field, never its value.
    """
    path = credentials_file(user_dir)
    if path is None:
        raise _no_user_dir()
    saved: Mapping[str, object] = {}
    try:
        saved = _read_file(path)
    except ConfigurationError:
        saved = {}  # an unreadable or broken file is replaced as a whole
    key_in = _text(api_key)
    secret_in = api_secret if isinstance(api_secret, str) else ""
    saved_key, saved_secret = _text(saved.get("api_key")), _text(saved.get("api_secret"))
    if not key_in and saved_key:
        key_in = saved_key
    if not secret_in.strip() and saved_secret and key_in == saved_key:
        secret_in = saved_secret
    key, secret = check_key_pair(key_in, secret_in)
    project = _text(project_id) if project_id is not None else ""
    if project_id is not None and not isinstance(project_id, str):
        raise ValidationError("projectId", project_id, "a Scenario project id (proj_...) or empty", param="project_id")
    if project:
        spec.check_id("projectId", project, "project_id")
    data: dict[str, str] = {"api_key": key, "api_secret": secret}
    if project:
        data["project_id"] = project
    _write_private(path, json.dumps(data, indent=2) + "\n")
    return path


def clear_credentials(user_dir: Path | None = None) -> bool:
    """Delete the saved file; True when there was one. Environment variables are not affected."""
    path = credentials_file(user_dir)
    if path is None:
        raise _no_user_dir()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
