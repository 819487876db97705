"""What the *Settings > Scenario* dialog asks the server: key status, save, clear, test.

The answers behind the credential routes of :mod:`nodes.routes`, as plain
functions tested without aiohttp:

* :func:`status`: where the key comes from (environment or file), the key's
  last 4 characters, whether environment variables win; never the secret.
* :func:`save`: store a key pair (and optional project id) in
  ``<user dir>/scenario/credentials.json`` (0600, atomic; see
  :func:`nodes.credentials.save_credentials`), then answer the new status.
* :func:`clear`: delete that file.
* :func:`test_connection`: one cheap authenticated call (the newest job,
  ``GET /jobs?pageSize=1``) with the credentials the nodes would use now.

The secret travels one way only, browser to server, in a POST body; no
answer, log line or error text holds it. The frontend never keeps it either
(not in localStorage, not in ComfyUI's settings, not in a workflow).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..scenario_api import ScenarioClient, ValidationError
from .credentials import clear_credentials, credentials_status, resolve_settings, save_credentials
from .web_api import _with_client, clear_model_cache
from .web_api import status as api_status

log = logging.getLogger("scenario_controlnet")

FIELDS = ("api_key", "api_secret", "project_id")


def status(env: Mapping[str, str] | None = None, user_dir: Path | None = None) -> dict[str, Any]:
    """``GET /scenario/credentials``: the key's source and last 4 characters, plus which API is used."""
    answer = credentials_status(env, user_dir)
    api = api_status(env)
    answer["base_url"] = api.get("base_url", "")
    answer["emulator"] = bool(api.get("emulator"))
    if not answer["configured"] and api.get("error"):
        answer["error"] = api["error"]
    return answer


def _body(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise ValidationError("body", "<hidden>", "a JSON object with api_key, api_secret, project_id", param="body")
    unknown = sorted(str(k) for k in payload if k not in FIELDS)
    if unknown:
        raise ValidationError(
            "body", ", ".join(unknown)[:80], "only the fields api_key, api_secret and project_id", param="body"
        )
    return payload


def save(payload: Any, env: Mapping[str, str] | None = None, user_dir: Path | None = None) -> dict[str, Any]:
    """``POST /scenario/credentials``: validate, store owner-only, answer the new status (no secret)."""
    body = _body(payload)
    path = save_credentials(body.get("api_key"), body.get("api_secret"), body.get("project_id"), user_dir)
    clear_model_cache()  # another key may see other models
    log.info("Scenario: credentials saved to %s", path)  # the path only
    answer = status(env, user_dir)
    answer["saved"] = True
    return answer


def clear(env: Mapping[str, str] | None = None, user_dir: Path | None = None) -> dict[str, Any]:
    """``POST /scenario/credentials/clear``: delete the saved file (environment variables stay)."""
    removed = clear_credentials(user_dir)
    clear_model_cache()
    if removed:
        log.info("Scenario: saved credentials removed")
    answer = status(env, user_dir)
    answer["removed"] = removed
    return answer


async def test_connection(env: Mapping[str, str] | None = None, user_dir: Path | None = None) -> dict[str, Any]:
    """``POST /scenario/credentials/test``: one authenticated read with the key the nodes would use.

    Answers ``{"ok": true, "source", "key_last4", "base_url", "emulator"}``;
    a refused key raises the client's error (the route maps it to 400 with
    Scenario's reason). Nothing is generated or billed.
    """
    current = status(env, user_dir)

    async def ping(client: ScenarioClient) -> Any:
        return await client.list_jobs(page_size=1, max_pages=1)

    await _with_client(lambda: resolve_settings(env, user_dir), ping)
    return {
        "ok": True,
        "source": current["source"],
        "key_last4": current["key_last4"],
        "base_url": current["base_url"],
        "emulator": current["emulator"],
    }
