"""Credentials from the browser: the Settings > Scenario routes (nodes/web_credentials.py, nodes/routes.py).

Every route is exercised through aiohttp's test client on the real route table.
What must hold: the secret is never echoed (answers, errors, logs); the file is
written atomically and owner-only; routes that change state accept only POST with
a JSON body; input is validated naming the field; environment variables win and
the status says so; "test connection" makes one cheap authenticated read.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pack_loader import submodule

pytest_plugins = ["pack_loader"]  # fixtures: comfy

web = pytest.importorskip("aiohttp.web")
test_utils = pytest.importorskip("aiohttp.test_utils")

TEST_KEY, TEST_SECRET = "test-key", "test-secret-value-123"
NEW_KEY = "api_browserkey0042"
NEW_SECRET = "browser-secret-XYZ-987654"
POSIX = os.name == "posix"


@pytest.fixture
async def client(comfy: Any, env_for_emulator: Any) -> AsyncIterator[Any]:
    """An aiohttp test client on the pack's route table, with a fake ComfyUI user directory."""
    routes = submodule("nodes.routes")
    table = web.RouteTableDef()
    routes.register_routes(table)
    app = web.Application()
    app.add_routes(table)
    async with test_utils.TestClient(test_utils.TestServer(app)) as http:
        http.user_dir = comfy.user_dir
        yield http


@pytest.fixture
def no_env_key(monkeypatch: Any) -> None:
    for name in ("SCENARIO_API_KEY", "SCENARIO_API_SECRET", "SCENARIO_SDK_API_KEY", "SCENARIO_SDK_API_SECRET"):
        monkeypatch.delenv(name, raising=False)


def creds_path(http: Any) -> Path:
    return http.user_dir / "scenario" / "credentials.json"


async def post_json(http: Any, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    resp = await http.post(path, json=body)
    return resp.status, await resp.json()


# --------------------------------------------------------------------------- status


async def test_status_with_env_credentials_shows_only_the_last_4(client: Any) -> None:
    resp = await client.get("/scenario/credentials")
    assert resp.status == 200
    body = await resp.json()
    assert body["configured"] is True and body["source"] == "env" and body["env_wins"] is True
    assert body["env_key"] == "SCENARIO_API_KEY"
    assert body["key_last4"] == "" or len(body["key_last4"]) == 4  # "test-key" is 8 chars: "-key"
    assert body["key_last4"] == "-key"
    assert body["file"]["present"] is False and body["emulator"] is True
    text = json.dumps(body)
    assert TEST_SECRET not in text and "test-key" not in text


async def test_status_without_any_key(client: Any, no_env_key: None) -> None:
    body = await (await client.get("/scenario/credentials")).json()
    assert body["configured"] is False and body["source"] is None and body["env_wins"] is False
    assert "SCENARIO_API_KEY" in body["error"] and "Settings > Scenario" in body["error"]


async def test_sdk_variable_names_are_honoured(client: Any, no_env_key: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("SCENARIO_SDK_API_KEY", TEST_KEY)
    monkeypatch.setenv("SCENARIO_SDK_API_SECRET", TEST_SECRET)
    body = await (await client.get("/scenario/credentials")).json()
    assert body["configured"] is True and body["source"] == "env" and body["env_key"] == "SCENARIO_SDK_API_KEY"
    status, answer = await post_json(client, "/scenario/credentials/test", {})
    assert status == 200 and answer["ok"] is True


def test_client_settings_from_env_honour_the_sdk_names() -> None:
    from scenario_api.config import Settings

    env = {"SCENARIO_SDK_API_KEY": NEW_KEY, "SCENARIO_SDK_API_SECRET": NEW_SECRET}
    settings = Settings.from_env(env)
    assert settings.credentials is not None and NEW_SECRET not in repr(settings)
    ours = Settings.from_env({**env, "SCENARIO_API_KEY": TEST_KEY, "SCENARIO_API_SECRET": TEST_SECRET})
    assert ours.credentials is not None and ours.credentials.key_hint.startswith("test-k")  # ours win
    assert Settings.from_env({"SCENARIO_SDK_API_KEY": NEW_KEY}).credentials is None


async def test_halves_of_different_pairs_are_not_mixed(client: Any, no_env_key: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("SCENARIO_API_KEY", TEST_KEY)
    monkeypatch.setenv("SCENARIO_SDK_API_SECRET", TEST_SECRET)
    body = await (await client.get("/scenario/credentials")).json()
    assert body["configured"] is False and body["env_wins"] is False


# --------------------------------------------------------------------------- save


async def test_save_writes_an_owner_only_file_and_never_echoes_the_secret(
    client: Any, no_env_key: None, emulator: Any, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    status, body = await post_json(
        client, "/scenario/credentials", {"api_key": NEW_KEY, "api_secret": NEW_SECRET, "project_id": "proj_42"}
    )
    assert status == 200, body
    assert body["saved"] is True and body["configured"] is True and body["source"] == "file"
    assert body["key_last4"] == "0042" and body["project_id"] == "proj_42" and body["project_source"] == "file"
    assert body["file"]["present"] is True
    path = creds_path(client)
    assert json.loads(path.read_text()) == {"api_key": NEW_KEY, "api_secret": NEW_SECRET, "project_id": "proj_42"}
    if POSIX:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert body["file"]["owner_only"] is True
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temp file left behind
    later = await (await client.get("/scenario/credentials")).json()
    everything = json.dumps([body, later]) + caplog.text
    assert NEW_SECRET not in everything and NEW_KEY not in everything


async def test_saved_file_is_what_the_nodes_use(client: Any, no_env_key: None) -> None:
    status, _ = await post_json(client, "/scenario/credentials", {"api_key": TEST_KEY, "api_secret": TEST_SECRET})
    assert status == 200
    settings = submodule("nodes.credentials").resolve_settings()
    assert settings.credentials is not None and settings.credentials.authorization_header().startswith("Basic ")
    status, answer = await post_json(client, "/scenario/credentials/test", {})
    assert status == 200 and answer == {
        "ok": True,
        "source": "file",
        "key_last4": "-key",
        "base_url": answer["base_url"],
        "emulator": True,
    }


async def test_save_tightens_an_existing_folder_and_replaces_the_file(client: Any, no_env_key: None) -> None:
    folder = client.user_dir / "scenario"
    folder.mkdir(mode=0o755)
    (folder / "credentials.json").write_text('{"api_key": "old-key-1234", "api_secret": "old-secret"}')
    if POSIX:
        os.chmod(folder / "credentials.json", 0o644)
    status, body = await post_json(client, "/scenario/credentials", {"api_key": NEW_KEY, "api_secret": NEW_SECRET})
    assert status == 200 and body["key_last4"] == "0042"
    if POSIX:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "credentials.json").stat().st_mode) == 0o600


async def test_empty_secret_keeps_the_saved_one_for_the_same_key(client: Any, no_env_key: None) -> None:
    await post_json(client, "/scenario/credentials", {"api_key": NEW_KEY, "api_secret": NEW_SECRET})
    status, body = await post_json(
        client, "/scenario/credentials", {"api_key": "", "api_secret": "", "project_id": "p1"}
    )
    assert status == 200 and body["project_id"] == "p1"
    assert json.loads(creds_path(client).read_text())["api_secret"] == NEW_SECRET
    # a new key needs its own secret
    status, body = await post_json(client, "/scenario/credentials", {"api_key": "api_other_key", "api_secret": ""})
    assert status == 400 and body["field"] == "api_secret"


async def test_env_wins_over_a_saved_file_and_the_status_says_so(client: Any) -> None:
    status, body = await post_json(client, "/scenario/credentials", {"api_key": NEW_KEY, "api_secret": NEW_SECRET})
    assert status == 200
    assert body["source"] == "env" and body["env_wins"] is True and body["key_last4"] == "-key"
    assert body["file"]["configured"] is True and body["file"]["key_last4"] == "0042"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"api_key": "api:with-colon", "api_secret": NEW_SECRET}, "api_key"),
        ({"api_key": "api key with spaces", "api_secret": NEW_SECRET}, "api_key"),
        ({"api_key": "abc", "api_secret": NEW_SECRET}, "api_key"),
        ({"api_key": "k" * 300, "api_secret": NEW_SECRET}, "api_key"),
        ({"api_key": 12345678, "api_secret": NEW_SECRET}, "api_key"),
        ({"api_key": NEW_KEY, "api_secret": ""}, "api_secret"),
        ({"api_key": NEW_KEY, "api_secret": "has a\nnewline"}, "api_secret"),
        ({"api_key": NEW_KEY, "api_secret": "s" * 2000}, "api_secret"),
        ({"api_key": NEW_KEY, "api_secret": NEW_SECRET, "project_id": "../etc"}, "project_id"),
        ({"api_key": NEW_KEY, "api_secret": NEW_SECRET, "project_id": 7}, "project_id"),
        ({"api_key": NEW_KEY, "api_secret": NEW_SECRET, "password": "x"}, "body"),
    ],
)
async def test_invalid_input_is_refused_naming_the_field(
    client: Any, no_env_key: None, payload: dict[str, Any], field: str
) -> None:
    status, body = await post_json(client, "/scenario/credentials", payload)
    assert status == 400 and body["code"] == "validation" and body["field"] == field, body
    assert field in body["error"]
    assert not creds_path(client).exists()
    secret = payload.get("api_secret")
    if isinstance(secret, str) and secret:
        assert secret not in json.dumps(body)
    key = payload.get("api_key")
    if isinstance(key, str) and len(key) > 3:
        assert key not in json.dumps(body)


@pytest.mark.parametrize(
    "data, content_type, status",
    [
        (b"api_key=a&api_secret=b", "application/x-www-form-urlencoded", 415),
        (b'{"api_key": "api_x", "api_secret": "y"}', "text/plain", 415),
        (b"{not json", "application/json", 400),
        (b'["a", "list"]', "application/json", 400),
        (b"x" * (70 * 1024), "application/json", 413),
    ],
)
async def test_body_must_be_a_json_object(
    client: Any, no_env_key: None, data: bytes, content_type: str, status: int
) -> None:
    resp = await client.post("/scenario/credentials", data=data, headers={"Content-Type": content_type})
    body = await resp.json()
    assert resp.status == status and body["field"] == "body"
    assert "api_x" not in json.dumps(body)
    assert not creds_path(client).exists()


@pytest.mark.parametrize(
    "method, path",
    [
        ("PUT", "/scenario/credentials"),
        ("DELETE", "/scenario/credentials"),
        ("PATCH", "/scenario/credentials"),
        ("GET", "/scenario/credentials/clear"),
        ("DELETE", "/scenario/credentials/clear"),
        ("GET", "/scenario/credentials/test"),
    ],
)
async def test_state_changing_routes_accept_only_post(client: Any, method: str, path: str) -> None:
    await post_json(client, "/scenario/credentials", {"api_key": NEW_KEY, "api_secret": NEW_SECRET})
    resp = await client.request(method, path)
    assert resp.status == 405
    assert creds_path(client).exists()  # nothing was cleared


async def test_clear_removes_the_file_only_by_post_json(client: Any, no_env_key: None) -> None:
    await post_json(client, "/scenario/credentials", {"api_key": NEW_KEY, "api_secret": NEW_SECRET})
    resp = await client.post("/scenario/credentials/clear")  # no JSON content type: refused (CSRF-safe)
    assert resp.status == 415 and creds_path(client).exists()
    status, body = await post_json(client, "/scenario/credentials/clear", {})
    assert status == 200 and body["removed"] is True and body["configured"] is False
    assert not creds_path(client).exists()
    status, body = await post_json(client, "/scenario/credentials/clear", {})
    assert status == 200 and body["removed"] is False


# --------------------------------------------------------------------------- test connection


async def test_connection_makes_one_cheap_authenticated_read(client: Any, emulator: Any) -> None:
    status, body = await post_json(client, "/scenario/credentials/test", {})
    assert status == 200 and body["ok"] is True and body["source"] == "env"
    calls = emulator.log()
    assert [(c["method"], c["path"]) for c in calls] == [("GET", "/v1/jobs")]
    assert calls[0]["query"].get("pageSize") == "1" and calls[0]["auth_ok"] is True


async def test_connection_with_a_wrong_secret_says_so_without_the_secret(
    client: Any, monkeypatch: Any, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SCENARIO_API_SECRET", "wrong-secret-456")
    status, body = await post_json(client, "/scenario/credentials/test", {})
    assert status == 400 and body["code"] == "auth"
    assert "Please login" not in body["error"]
    assert "wrong-secret-456" not in json.dumps(body) + caplog.text


async def test_connection_without_a_key_explains_how(client: Any, no_env_key: None, emulator: Any) -> None:
    status, body = await post_json(client, "/scenario/credentials/test", {})
    assert status == 400 and body["code"] == "configuration"
    assert "Settings > Scenario" in body["error"]
    assert emulator.log() == []
