"""Stop and task cancellation: the Scenario job is cancelled and the node ends cleanly."""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers import make_array
from pack_loader import image_tensor, submodule

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

SLOW = {"queued": 0.05, "warming_up": 0.05, "running": 5.0}


def widgets(**over):
    base = {
        "prompt": "a ship", "model_id": "flux.1-dev", "modality": "canny", "modality_strength": 1.0, "num_samples": 1,
        "guidance": 3.5, "num_inference_steps": 30, "width": 0, "height": 0, "seed": 3,
    }
    base.update(over)
    return base


async def wait_until(cond, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def submits(emulator):
    return [e for e in emulator.requests("POST", "/v1/generate/*") if e.get("query", {}).get("dryRun") != "true"]


def cancels(emulator):
    return [e for e in emulator.requests("POST", "/v1/jobs/*/action") if e["body"] == {"action": "cancel"}]


async def test_stop_cancels_the_scenario_job_and_raises_comfys_interrupt(node_env, comfy, pack):
    node_env.config(timing=SLOW)
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    task = asyncio.ensure_future(node.generate(**widgets(), control_image=image_tensor(make_array(64, 64))))
    await wait_until(lambda: len(submits(node_env)) == 1)
    await asyncio.sleep(0.1)
    comfy.interrupted = True  # what POST /interrupt does in ComfyUI
    with pytest.raises(comfy.InterruptProcessingException):
        await asyncio.wait_for(task, 5)
    [cancel] = cancels(node_env)
    job_path = cancel["path"]
    assert job_path.startswith("/v1/jobs/job_") and job_path.endswith("/action")
    assert comfy.interrupted is True  # read, never cleared: sibling nodes see the Stop too


async def test_stop_during_fan_out_cancels_every_job(node_env, comfy, pack):
    node_env.config(timing=SLOW)
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    control = image_tensor(make_array(64, 64), make_array(64, 64, "checker"))
    task = asyncio.ensure_future(node.generate(**widgets(), control_image=control))
    await wait_until(lambda: len(submits(node_env)) == 2)
    comfy.interrupted = True
    with pytest.raises(comfy.InterruptProcessingException):
        await asyncio.wait_for(task, 5)
    assert len(cancels(node_env)) == 2


async def test_cancelled_node_task_cancels_the_scenario_job(node_env, comfy, pack):
    node_env.config(timing=SLOW)
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    task = asyncio.ensure_future(node.generate(**widgets(), control_image=image_tensor(make_array(64, 64))))
    await wait_until(lambda: len(submits(node_env)) == 1)
    await asyncio.sleep(0.1)
    task.cancel()  # what asyncio.run does to pending nodes when a sibling node failed
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(cancels(node_env)) == 1


async def test_stop_before_submit_sends_nothing_paid(node_env, comfy, pack):
    comfy.interrupted = True
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    with pytest.raises(comfy.InterruptProcessingException):
        await node.generate(**widgets(), control_image_id="asset_demo_canny")
    assert submits(node_env) == []


async def test_stop_while_waiting_for_a_scenario_slot_is_a_clean_interrupt(node_env, comfy, pack):
    # Scenario answers 429 "retry in 30 s": the submit waits, and a Stop during that wait must end the
    # node at once as ComfyUI's interrupt (no job exists yet, so there is nothing to cancel).
    node_env.fault(target="POST /v1/generate/*", kind="status", status=429, retry_after=30, count=5)
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    task = asyncio.ensure_future(node.generate(**widgets(), control_image=image_tensor(make_array(64, 64))))
    await wait_until(lambda: len(submits(node_env)) == 1)
    await asyncio.sleep(0.1)
    comfy.interrupted = True
    with pytest.raises(comfy.InterruptProcessingException):
        await asyncio.wait_for(task, 5)  # not after the 30 s wait
    assert [e["status"] for e in submits(node_env)] == [429]  # not sent again
    assert cancels(node_env) == []
    with node_env.api() as api:
        assert api.get("/jobs").json()["jobs"] == []


async def test_stop_in_poll_job_does_not_cancel_the_job(node_env, comfy, pack):
    node_env.config(timing=SLOW)
    with node_env.api() as api:
        job_id = api.post(
            "/generate/controlnet",
            json={"prompt": "x", "modelId": "flux.1-dev", "modality": "canny", "controlImageId": "asset_demo_canny"},
        ).json()["job"]["jobId"]
    poll = pack.NODE_CLASS_MAPPINGS["ScenarioPollJob"]()
    task = asyncio.ensure_future(poll.poll(job_id, 30, unique_id="9"))
    await wait_until(lambda: len(node_env.requests("GET", f"/v1/jobs/{job_id}")) >= 1)
    comfy.interrupted = True
    with pytest.raises(comfy.InterruptProcessingException):
        await asyncio.wait_for(task, 5)
    assert cancels(node_env) == []


def test_progress_hook_interrupt_is_absorbed_and_flag_restored(comfy, pack, monkeypatch):
    bridge = submodule("nodes.bridge")
    progress = bridge.Progress("4")
    progress.update(0.25)
    assert comfy.bar_updates == [("4", 25.0, 100)]
    # Stop arrives between our check and ComfyUI's hook: the hook clears the flag and raises.
    monkeypatch.setattr(bridge, "processing_interrupted", lambda: False)
    comfy.interrupted = True
    progress.update(0.5)  # must not raise
    assert comfy.interrupted is True  # put back so the job runner still sees the Stop
    assert len(comfy.bar_updates) == 1


def test_bridge_without_comfyui_is_inert(pack, monkeypatch):
    import sys

    for name in ("comfy", "comfy.model_management", "comfy.utils", "server", "folder_paths"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail like a missing module
    bridge = submodule("nodes.bridge")
    assert bridge.processing_interrupted() is False
    assert bridge.user_directory() is None
    exc = bridge.interrupt_exception()
    assert type(exc).__name__ == "InterruptProcessingException" and bridge.is_interrupt(exc)
    p = bridge.Progress("1")
    p.update(0.5)
    p.text("hello")
    assert p.last_text == "hello"
