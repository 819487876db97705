"""Stop and task cancellation: the Scenario job is cancelled and the node ends cleanly."""

from __future__ import annotations

import asyncio

import pytest
from helpers import make_array, wait_until
from pack_loader import image_tensor, submodule

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

SLOW = {"queued": 0.05, "warming_up": 0.05, "running": 5.0}


def widgets(**over):
    base = {
        "prompt": "a ship",
        "model_id": "flux.1-dev",
        "modality": "canny",
        "modality_strength": 1.0,
        "num_samples": 1,
        "guidance": 3.5,
        "num_inference_steps": 30,
        "width": 0,
        "height": 0,
        "seed": 3,
    }
    base.update(over)
    return base


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
    # both jobs are being watched (each got its first status poll): Stop lands while they run
    await wait_until(lambda: len({e["path"] for e in node_env.requests("GET", "/v1/jobs/job_*")}) == 2, timeout=10)
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


# --------------------------------------------------------------------------- Stop during free reads and uploads
# Scenario answers 429 "retry in 30 s" to a request made before any job exists: a Stop during that wait must
# end the node within moments as ComfyUI's interrupt, with no second attempt and nothing submitted.

STOP_BEFORE_SUBMIT = [
    pytest.param("POST /v1/assets", "POST", "/v1/assets", {}, id="upload"),
    pytest.param("GET /v1/models/*", "GET", "/v1/models/*", {"control_image_id": "asset_demo_canny"}, id="model"),
    pytest.param(
        "GET /v1/assets/*", "GET", "/v1/assets/asset_demo_canny", {"control_image_id": "asset_demo_canny"}, id="asset"
    ),
    pytest.param(
        "POST /v1/generate/*",
        "POST",
        "/v1/generate/*",
        {"control_image_id": "asset_demo_canny", "max_creative_units": 1000.0},
        id="quote",
    ),
]


@pytest.mark.parametrize("target, method, path, source", STOP_BEFORE_SUBMIT)
async def test_stop_while_a_request_before_submit_waits_out_a_429(node_env, comfy, pack, target, method, path, source):
    node_env.fault(target=target, kind="status", status=429, retry_after=30, count=5)
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    source = source or {"control_image": image_tensor(make_array(64, 64, "noise", seed=5))}
    task = asyncio.ensure_future(node.generate(**widgets(), **source))
    await wait_until(lambda: len(node_env.requests(method, path)) == 1)
    await asyncio.sleep(0.3)
    assert not task.done()  # waiting out the Retry-After
    comfy.interrupted = True
    with pytest.raises(comfy.InterruptProcessingException):
        await asyncio.wait_for(task, 3)  # not after the 30 s wait
    assert [e["status"] for e in node_env.requests(method, path)] == [429]  # not sent again
    assert submits(node_env) == []


async def test_stop_while_upload_asset_waits_out_a_503(node_env, comfy, pack):
    node_env.fault(target="POST /v1/assets", kind="status", status=503, retry_after=30, count=5)
    node = pack.NODE_CLASS_MAPPINGS["ScenarioUploadAsset"]()
    task = asyncio.ensure_future(node.upload(image_tensor(make_array(64, 64, "noise", seed=6)), "x", unique_id="2"))
    await wait_until(lambda: len(node_env.requests("POST", "/v1/assets")) == 1)
    await asyncio.sleep(0.3)
    comfy.interrupted = True
    with pytest.raises(comfy.InterruptProcessingException):
        await asyncio.wait_for(task, 3)
    assert [e["status"] for e in node_env.requests("POST", "/v1/assets")] == [503]


async def test_stop_while_poll_job_waits_out_a_429(node_env, comfy, pack):
    with node_env.api() as api:
        job_id = api.post(
            "/generate/controlnet",
            json={"prompt": "x", "modelId": "flux.1-dev", "modality": "canny", "controlImageId": "asset_demo_canny"},
        ).json()["job"]["jobId"]
    node_env.fault(target="GET /v1/jobs/*", kind="status", status=429, retry_after=30, count=5)
    poll = pack.NODE_CLASS_MAPPINGS["ScenarioPollJob"]()
    task = asyncio.ensure_future(poll.poll(job_id, 60, unique_id="9"))
    await wait_until(lambda: len(node_env.requests("GET", f"/v1/jobs/{job_id}")) == 1)
    await asyncio.sleep(0.3)
    comfy.interrupted = True
    with pytest.raises(comfy.InterruptProcessingException):
        await asyncio.wait_for(task, 3)
    assert [e["status"] for e in node_env.requests("GET", f"/v1/jobs/{job_id}")] == [429]
    assert cancels(node_env) == []  # Poll Job only observes


# --------------------------------------------------------------------------- cancellation around the submit


def test_job_submitted_while_the_prompt_loop_is_torn_down_is_cancelled(node_env, comfy, pack):
    # ComfyUI runs a prompt with asyncio.run: when another node fails, every pending task (the node's and
    # its children's) is cancelled at once. A submit on the wire at that moment still creates a job, which
    # must get a Scenario cancel before the loop closes.
    node_env.config(timing=SLOW)
    node_env.fault(target="POST /v1/generate/*", kind="slow", delay=0.8, query={"dryRun": None})
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()

    async def prompt() -> None:
        asyncio.ensure_future(node.generate(**widgets(width=512, height=512), control_image_id="asset_demo_canny"))
        await wait_until(lambda: len(submits(node_env)) == 1)  # the submit reached the emulator (no size read)
        # the submit is on the wire now: the emulator has created the job and holds back its reply
        await wait_until(lambda: node_env.state()["jobs"] == 1, timeout=10)
        # returning ends asyncio.run, which cancels the node's tasks and waits for them

    asyncio.run(prompt())
    [submit] = submits(node_env)
    assert submit["job_id"]  # the emulator created the job (its reply never reached the cancelled task)
    [cancel] = cancels(node_env)
    assert cancel["path"] == f"/v1/jobs/{submit['job_id']}/action" and cancel["status"] == 200
    with node_env.api() as api:
        assert api.get(f"/jobs/{submit['job_id']}").json()["job"]["status"] == "canceled"


async def test_node_cancelled_while_a_sibling_winds_down_cancels_and_awaits_its_jobs(node_env, comfy, pack):
    # The first submit to arrive is held on the wire (its job is created, the reply comes late); the second
    # is refused (400): the node cancels the first, whose client then looks for the job its request created
    # (the lookup is slow here) to cancel it. If the node itself is cancelled while that job winds down, it
    # must still be awaited (its job gets a Scenario cancel), never left running on a closing loop. (The
    # held submit is the first to arrive, so the refusal can never come before the other request was sent.)
    node_env.config(timing=SLOW)
    node_env.faults(
        {"target": "POST /v1/generate/*", "kind": "slow", "delay": 0.8, "query": {"dryRun": None}},
        {"target": "POST /v1/generate/*", "kind": "status", "status": 400, "query": {"dryRun": None}},
        {"target": "GET /v1/jobs", "kind": "slow", "delay": 0.8, "process_first": False},
    )
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    before = asyncio.all_tasks()
    task = asyncio.ensure_future(
        # sizes from the assets (0): their look-ups warm one connection per job, so both submits leave together
        node.generate(**widgets(width=0, height=0), control_image_id="asset_demo_canny,asset_demo_pose")
    )
    await wait_until(lambda: 400 in [e["status"] for e in submits(node_env)])
    await asyncio.sleep(0.1)  # job 2 is winding down: its submit's job lookup is still in flight
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()  # no job left running
    [created] = [e for e in submits(node_env) if e.get("job_id")]
    [cancel] = cancels(node_env)
    assert cancel["path"] == f"/v1/jobs/{created['job_id']}/action" and cancel["status"] == 200


def _job_ids(emulator) -> set[str]:
    with emulator.api() as api:
        return {job["jobId"] for job in api.get("/jobs").json()["jobs"]}


def _held_replies(emulator) -> list[dict]:
    """Paid submits the emulator has received but not answered yet (a reply still in transit)."""
    return [e for e in submits(emulator) if e.get("status") is None]


@pytest.mark.parametrize("held", [1, 2], ids=["one-reply-held", "both-replies-held"])
async def test_stop_while_a_submit_reply_is_in_transit_cancels_every_job(node_env, comfy, pack, held):
    # Scenario has created the job(s) but the reply to the submit is still on its way back when Stop lands.
    node_env.config(timing=SLOW)
    node_env.fault(
        target="POST /v1/generate/*", query={"dryRun": None}, kind="slow", delay=3.0, process_first=True, count=held
    )
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    control = image_tensor(make_array(64, 64), make_array(64, 64, "checker"))
    task = asyncio.ensure_future(node.generate(**widgets(), control_image=control))
    await wait_until(lambda: node_env.state()["jobs"] == 2 and len(_held_replies(node_env)) == held, timeout=10)
    comfy.interrupted = True
    with pytest.raises(comfy.InterruptProcessingException):
        await asyncio.wait_for(task, 15)
    created = _job_ids(node_env)
    assert len(created) == 2
    cancelled = {e["path"].split("/")[3] for e in cancels(node_env)}
    assert cancelled == created  # every job Scenario created got its remote cancel, none twice
    assert len(cancels(node_env)) == 2
    ledger = submodule("nodes.job_ledger").node_ledger()
    for job_id in created:
        record = ledger.by_job(job_id)
        assert record is not None, f"job {job_id} is not in the ledger"
        assert record.state == "canceled"


async def test_stop_while_the_reply_naming_the_job_is_being_recorded_cancels_it(node_env, comfy, pack, monkeypatch):
    # The submit's reply has arrived and names the job; Stop lands while the job ledger records the claim.
    import threading
    import time

    node_env.config(timing=SLOW)
    ledger = submodule("nodes.job_ledger").node_ledger()
    real_claim = ledger.claim
    claiming = threading.Event()

    def slow_claim(*args, **kw):
        claiming.set()
        time.sleep(0.5)  # a busy ledger file (another ComfyUI or CLI process writing)
        return real_claim(*args, **kw)

    monkeypatch.setattr(ledger, "claim", slow_claim)
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    control = image_tensor(make_array(64, 64), make_array(64, 64, "checker"))
    task = asyncio.ensure_future(node.generate(**widgets(), control_image=control))
    await wait_until(claiming.is_set, timeout=10)
    comfy.interrupted = True
    with pytest.raises(comfy.InterruptProcessingException):
        await asyncio.wait_for(task, 15)
    created = _job_ids(node_env)
    assert len(created) == 2
    assert {e["path"].split("/")[3] for e in cancels(node_env)} == created
    assert len(cancels(node_env)) == 2
    for job_id in created:
        record = ledger.by_job(job_id)
        assert record is not None, f"job {job_id} is not in the ledger"
        assert record.state == "canceled"
