"""Credentials: env, then the user-directory file; a clear error otherwise; never leaked."""

from __future__ import annotations

import json
import logging

import pytest
from helpers import make_array
from pack_loader import image_tensor, submodule

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

TEST_KEY, TEST_SECRET = "test-key", "test-secret-value-123"
RESERVED = ("Unauthorized: Please login first to use this node.", "Payment Required")


def creds_file(comfy, data) -> None:
    path = comfy.user_dir / "scenario" / "credentials.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")


def drop_env(monkeypatch) -> None:
    monkeypatch.delenv("SCENARIO_API_KEY", raising=False)
    monkeypatch.delenv("SCENARIO_API_SECRET", raising=False)


async def test_missing_credentials_explain_how_and_send_nothing(node_env, comfy, pack, monkeypatch):
    errors = submodule("scenario_api.errors")
    drop_env(monkeypatch)
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    with pytest.raises(errors.ConfigurationError) as info:
        await node.generate(
            prompt="x",
            model_id="flux.1-dev",
            modality="canny",
            modality_strength=1.0,
            num_samples=1,
            guidance=3.5,
            num_inference_steps=30,
            width=0,
            height=0,
            seed=1,
            control_image=image_tensor(make_array(64, 64)),
        )
    text = str(info.value)
    assert text.startswith("Scenario: ")
    assert "SCENARIO_API_KEY" in text and "SCENARIO_API_SECRET" in text
    assert str(comfy.user_dir / "scenario" / "credentials.json") in text
    assert "login" not in text.lower() and not any(r in text for r in RESERVED)
    assert node_env.log() == []


async def test_every_node_reports_missing_credentials(node_env, comfy, pack, monkeypatch):
    errors = submodule("scenario_api.errors")
    drop_env(monkeypatch)
    calls = [
        pack.NODE_CLASS_MAPPINGS["ScenarioPollJob"]().poll("job_abc", 0),
        pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]().fetch("asset_demo_pose"),
        pack.NODE_CLASS_MAPPINGS["ScenarioUploadAsset"]().upload(image_tensor(make_array(8, 8)), "x"),
    ]
    for call in calls:
        with pytest.raises(errors.ConfigurationError):
            await call
    assert node_env.log() == []


async def test_credentials_file_in_user_directory(node_env, comfy, pack, monkeypatch):
    drop_env(monkeypatch)
    creds_file(comfy, {"api_key": TEST_KEY, "api_secret": TEST_SECRET, "project_id": "proj_42"})
    images, masks = await pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]().fetch("asset_demo_pose")
    assert images.shape[0] == 1 and masks.shape[0] == 1
    [entry] = node_env.requests("GET", "/v1/assets/asset_demo_pose")
    assert entry["auth_ok"] is True
    assert entry["query"].get("projectId") == "proj_42"


async def test_environment_wins_over_the_file(node_env, comfy, pack):
    creds_file(comfy, {"api_key": "wrong", "api_secret": "wrong-too"})
    await pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]().fetch("asset_demo_pose")
    assert all(e["auth_ok"] is not False for e in node_env.log())


def test_broken_file_never_echoes_its_content(comfy, pack, monkeypatch):
    credentials = submodule("nodes.credentials")
    errors = submodule("scenario_api.errors")
    drop_env(monkeypatch)
    creds_file(comfy, '{"api_key": "k", "api_secret": "super-secret-xyz"')  # truncated JSON
    with pytest.raises(errors.ConfigurationError) as info:
        credentials.resolve_settings()
    assert "super-secret-xyz" not in str(info.value) and "not valid JSON" in str(info.value)
    creds_file(comfy, {"api_key": "k"})  # no secret
    with pytest.raises(errors.ConfigurationError) as info:
        credentials.resolve_settings()
    assert "SCENARIO_API_SECRET" in str(info.value)


def test_settings_come_from_env(pack, monkeypatch):
    credentials = submodule("nodes.credentials")
    env = {
        "SCENARIO_API_URL": "http://127.0.0.1:9/v1",
        "SCENARIO_API_KEY": "k1",
        "SCENARIO_API_SECRET": "s1-secret",
        "SCENARIO_PROJECT_ID": "p1",
    }
    s = credentials.resolve_settings(env, user_dir=None)
    assert s.base_url == "http://127.0.0.1:9/v1" and s.project_id == "p1"
    assert "s1-secret" not in repr(s)


async def test_wrong_key_is_a_scenario_error_without_secret(node_env, comfy, pack, monkeypatch, caplog):
    errors = submodule("scenario_api.errors")
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SCENARIO_API_SECRET", "definitely-wrong-secret")
    with pytest.raises(errors.AuthenticationError) as info:
        await pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]().fetch("asset_demo_pose")
    text = str(info.value) + repr(info.value)
    assert str(info.value).startswith("Scenario: ")
    assert "definitely-wrong-secret" not in text and not any(r in text for r in RESERVED)
    assert "definitely-wrong-secret" not in caplog.text


async def test_a_generate_run_logs_no_secret(node_env, comfy, pack, caplog):
    caplog.set_level(logging.DEBUG)
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    await node.generate(
        prompt="x",
        model_id="flux.1-dev",
        modality="canny",
        modality_strength=1.0,
        num_samples=1,
        guidance=3.5,
        num_inference_steps=30,
        width=0,
        height=0,
        seed=1,
        control_image=image_tensor(make_array(64, 64)),
    )
    assert TEST_SECRET not in caplog.text and "base64," not in caplog.text
    assert TEST_SECRET not in " ".join(t for _, t in comfy.texts)


# --------------------------------------------------------------------------- ComfyUI's reserved phrases

# ComfyUI's frontend opens its own sign-in / top-up dialog when an error text contains these (case-sensitive).
FRONTEND_PHRASES = ("Unauthorized: Please login first", "Payment Required:")


async def run_generate(pack):
    return await pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]().generate(
        prompt="x",
        model_id="flux.1-dev",
        modality="canny",
        modality_strength=1.0,
        num_samples=1,
        guidance=3.5,
        num_inference_steps=30,
        width=0,
        height=0,
        seed=1,
        control_image=image_tensor(make_array(64, 64)),
    )


async def test_scenarios_payment_reason_never_reads_as_comfys_top_up(node_env, comfy, pack):
    errors = submodule("scenario_api.errors")
    node_env.config(credits=0, credits_status=402, credits_reason="Payment Required: top up")
    with pytest.raises(errors.InsufficientCreditsError) as info:
        await run_generate(pack)
    text = str(info.value)
    assert text.startswith("Scenario: ") and "top up" in text  # Scenario's reason is still shown
    assert not any(p in text for p in FRONTEND_PHRASES), text


async def test_scenarios_401_reason_never_reads_as_comfys_sign_in(node_env, comfy, pack):
    errors = submodule("scenario_api.errors")
    node_env.fault(
        target="GET /v1/models/*",
        kind="status",
        status=401,
        body={"reason": "Unauthorized: Please login first to use this node."},
    )
    with pytest.raises(errors.AuthenticationError) as info:
        await run_generate(pack)
    text = str(info.value)
    assert text.startswith("Scenario: ") and "SCENARIO_API_KEY" in text
    assert not any(p in text for p in FRONTEND_PHRASES), text


def test_reserved_phrases_are_defused_in_message_reason_and_hint(pack):
    errors = submodule("scenario_api.errors")
    node_errors = submodule("nodes.errors").node_errors
    with pytest.raises(errors.ScenarioError) as info:
        with node_errors():
            raise errors.ScenarioError(
                "Unauthorized: Please login first to use this node.",
                reason="Payment Required: Please add credits to your account to use this node.",
                hint="Payment Required: again",
            )
    text = str(info.value)
    assert text.startswith("Scenario: ") and "add credits" in text and "again" in text
    assert not any(p in text for p in FRONTEND_PHRASES), text
