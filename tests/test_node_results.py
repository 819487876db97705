"""Results on the node: previews through ComfyUI's ui payload, and a truthful final state for every ending.

The generate nodes and Fetch Asset return ``{"ui": {"images": [...], "scenario": [state]}, "result": (...)}``
from ComfyUI's entry point (``run``), and send the same state as the ``scenario.result`` websocket event;
a canceled or failed run sends it too, with the job ids, before the node raises.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from helpers import make_array, wait_until
from pack_loader import image_tensor, submodule
from PIL import Image

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

SLOW = {"queued": 0.05, "warming_up": 0.05, "running": 5.0}
TEST_SECRET = "test-secret-value-123"


def widgets(**over):
    base = {
        "prompt": "a ship",
        "model_id": "flux.1-dev",
        "modality": "canny",
        "modality_strength": 1.0,
        "num_samples": 2,
        "guidance": 3.5,
        "num_inference_steps": 28,
        "width": 0,
        "height": 0,
        "seed": 3,
    }
    base.update(over)
    return base


def results(comfy):
    return [data for event, data, _sid in comfy.events if event == "scenario.result"]


def submits(emulator):
    return [e for e in emulator.requests("POST", "/v1/generate/*") if e.get("query", {}).get("dryRun") != "true"]


@pytest.fixture
def temp(comfy, tmp_path):
    comfy.temp_dir = tmp_path / "comfy-temp"
    comfy.temp_dir.mkdir()
    return comfy.temp_dir


async def test_generate_returns_previews_and_the_done_state(node_env, comfy, pack, temp: Path):
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    assert (
        node.FUNCTION == "run"
        and getattr(pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"], "OUTPUT_NODE", False) is False
    )
    out = await node.run(**widgets(), control_image=image_tensor(make_array(96, 64)), unique_id="7")
    images, job_id, asset_ids = out["result"]
    assert images.shape[0] == 2 and job_id.startswith("job_")
    ui = out["ui"]
    assert [p["type"] for p in ui["images"]] == ["temp", "temp"]
    for p in ui["images"]:
        path = temp / p["subfolder"] / p["filename"]
        with Image.open(path) as im:
            assert im.size == (images.shape[2], images.shape[1])  # (w, h) of the result
    [state] = ui["scenario"]
    [(job,)] = [tuple(e["job_id"] for e in submits(node_env))]
    assert state["state"] == "done" and state["node"] == "7"
    assert state["job_ids"] == [job_id] and state["asset_ids"] == asset_ids.split(",")
    assert state["cost"] > 0 and state["sizes"] == [[images.shape[2], images.shape[1]]]
    assert results(comfy) == [state]  # the same object as the pack's event
    assert comfy.events[0][2] == "fake-client"  # to the browser that queued the prompt
    text = json.dumps(ui)
    assert TEST_SECRET not in text and "Signature" not in text and "http" not in text
    assert job == job_id


async def test_tuple_entry_point_is_unchanged(node_env, comfy, pack):
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    images, job_id, asset_ids = await node.generate(
        **widgets(num_samples=1), control_image=image_tensor(make_array(64, 64))
    )
    assert images.shape[0] == 1 and job_id.startswith("job_") and asset_ids.startswith("asset_")


async def test_no_previews_outside_comfyui_but_the_state_still_travels(node_env, comfy, pack):
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    out = await node.run(**widgets(num_samples=1), control_image=image_tensor(make_array(64, 64)))
    assert "images" not in out["ui"] and out["ui"]["scenario"][0]["state"] == "done"


async def test_stop_reports_canceled_with_the_job_id_and_ends_the_status_line(node_env, comfy, pack):
    node_env.config(timing=SLOW)
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    task = asyncio.ensure_future(node.run(**widgets(), control_image=image_tensor(make_array(64, 64)), unique_id="9"))
    await wait_until(lambda: len(submits(node_env)) == 1)
    await asyncio.sleep(0.1)
    comfy.interrupted = True
    with pytest.raises(comfy.InterruptProcessingException):
        await asyncio.wait_for(task, 5)
    [state] = results(comfy)
    job_id = submits(node_env)[0]["job_id"]
    assert state["state"] == "canceled" and state["job_ids"] == [job_id] and state["node"] == "9"
    assert comfy.texts[-1] == ("9", f"canceled | cancel sent for {job_id}")  # not a frozen "generating 20%"
    assert emulator_cancelled(node_env, job_id)


def emulator_cancelled(emulator, job_id):
    return any(e["path"] == f"/v1/jobs/{job_id}/action" for e in emulator.requests("POST", "/v1/jobs/*/action"))


async def test_a_failed_job_reports_scenarios_reason_and_hint(node_env, comfy, pack):
    node_env.fault(
        target="POST /v1/generate/*", kind="job_failure", error="NSFW content detected", hint="Change the prompt"
    )
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    with pytest.raises(Exception) as info:
        await node.run(**widgets(num_samples=1), control_image=image_tensor(make_array(64, 64)), unique_id="3")
    [state] = results(comfy)
    assert state["state"] == "failed" and "NSFW content detected" in state["reason"]
    assert state["reason"] == str(info.value) and state["reason"].startswith("Scenario: ")
    assert state["job_ids"] and state["job_ids"][0].startswith("job_")
    assert comfy.texts[-1][1].startswith("failed | job_")


async def test_bad_input_reports_failed_before_anything_is_sent(node_env, comfy, pack):
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    errors = submodule("scenario_api.errors")
    with pytest.raises(errors.ValidationError):
        await node.run(**widgets(), unique_id="4")  # no control image at all
    [state] = results(comfy)
    assert state["state"] == "failed" and "control_image" in state["reason"] and state["job_ids"] == []
    assert node_env.log() == []


async def test_fetch_asset_shows_its_images_and_ids(node_env, comfy, pack, temp: Path):
    node = pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]()
    assert node.FUNCTION == "run"
    out = await node.run("asset_demo_pose,asset_demo_canny", unique_id="5")
    images, masks = out["result"]
    assert images.shape[0] == 2 and masks.shape[0] == 2
    assert len(out["ui"]["images"]) == 2
    [state] = out["ui"]["scenario"]
    assert state["state"] == "done" and state["asset_ids"] == ["asset_demo_pose", "asset_demo_canny"]
    assert state["cost"] == 0 and state["job_ids"] == []
    images2, masks2 = await node.fetch("asset_demo_pose")
    assert images2.shape[0] == 1


def test_previews_never_escape_the_temp_folder(comfy, tmp_path):
    bridge = submodule("nodes.bridge")
    comfy.temp_dir = tmp_path
    assert bridge.save_previews([("../evil.png", b"x")]) == []
    assert not (tmp_path.parent / "evil.png").exists()
    assert bridge.save_previews([("ok.png", b"x")]) == [{"filename": "ok.png", "subfolder": "scenario", "type": "temp"}]


def test_results_outside_comfyui_do_nothing() -> None:
    bridge = submodule("nodes.bridge")
    assert bridge.temp_directory() is None
    assert bridge.save_previews([("a.png", b"x")]) == []
    assert bridge.send_event("scenario.result", {"state": "done"}) is False
