"""The core's contracts: one cancellation story, one upload service, quotes never upload, typed failures.

* a second (third) cancellation of a submit whose request may be on the wire
  does not cut short the search for the job it created: the job still gets
  its Scenario cancel;
* every public client method raises a ScenarioError subclass (or
  CancelledError), whatever the server or the network does;
* a price quote on a custom model uploads nothing, however often it runs,
  through the client and through the nodes' web quote route;
* the upload service keys by account (never by the secret) and content;
* the job-watching loop takes a "next poll delay" function.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from conftest import TEST_KEY, TEST_SECRET
from helpers import data_url, fast_client, make_png
from pack_loader import submodule

from scenario_api import (
    UPLOADS,
    ControlNetRequest,
    Credentials,
    Job,
    JobStatus,
    RetryPolicy,
    ScenarioClient,
    ScenarioError,
    Settings,
    UploadService,
)
from scenario_api.emulator import Emulator

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

SUBMIT = "POST /v1/generate/*"
PAID_ONLY = {"dryRun": None}
MAP = data_url(make_png(64, 64, "edges"))
BFL = "model_bfl-flux-1-dev"


def _request(**changes: Any) -> ControlNetRequest:
    fields: dict[str, Any] = {"prompt": "a lighthouse", "modality": "canny", "control_image": MAP, "seed": 4321}
    fields.update(changes)
    return ControlNetRequest(**fields)


def _submits(emulator: Any) -> list[dict[str, Any]]:
    return [e for e in emulator.requests("POST", "/v1/generate/*") if e.get("query", {}).get("dryRun") != "true"]


def _jobs(emulator: Any) -> list[dict[str, Any]]:
    with emulator.api() as api:
        return api.get("/jobs").json()["jobs"]


# --------------------------------------------------------------------------- cancellation during the submit


REPLY_HELD = {
    # the job exists at once, its reply comes late: the first cancellation lands while the submit is on the wire
    "slow-reply": [{"target": SUBMIT, "kind": "slow", "delay": 1.0, "query": PAID_ONLY}],
    # the reply is lost: the first cancellation lands while the client looks for the job (the adoption lookup)
    "lost-reply": [{"target": SUBMIT, "kind": "disconnect_after_accept", "query": PAID_ONLY}],
}


@pytest.mark.parametrize("held", list(REPLY_HELD))
async def test_repeated_cancellation_does_not_cut_the_submit_recovery_short(emulator, settings, caplog, held):
    # The job lookups are slow (0.6 s each): the second and third cancellations arrive while the recovery that
    # the first one started is still looking for the job.
    emulator.config(timing={"queued": 5})  # still cancellable when the recovery gets to it
    emulator.faults(
        *REPLY_HELD[held],
        {"target": "GET /v1/jobs", "kind": "slow", "delay": 0.6, "process_first": False, "count": 2},
    )
    caplog.set_level(logging.WARNING, logger="scenario_api")
    async with fast_client(settings) as client:
        await client.get_model("flux.1-dev")
        task = asyncio.ensure_future(client.submit(_request(prompt="cancelled three times")))
        await asyncio.sleep(0.3)  # the paid request is on the wire
        task.cancel()
        await asyncio.sleep(0.2)  # the recovery's job lookup is under way (0.6 s)
        task.cancel()
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert task.cancelled()
    [submit] = _submits(emulator)
    job_id = submit["job_id"]
    assert job_id.startswith("job_")
    [cancel] = emulator.requests("POST", "/v1/jobs/*/action")
    assert cancel["path"] == f"/v1/jobs/{job_id}/action" and cancel["body"] == {"action": "cancel"}
    assert cancel["status"] == 200
    assert [(j["jobId"], j["status"]) for j in _jobs(emulator)] == [(job_id, "canceled")]
    assert f"Scenario job {job_id} was created while the caller was being cancelled" in caplog.text
    assert "further cancellation(s)" in caplog.text


async def test_a_recovery_that_finds_nothing_logs_what_to_check(emulator, settings, caplog):
    emulator.faults(
        {"target": SUBMIT, "kind": "slow", "delay": 1.0, "query": PAID_ONLY},
        {"target": "GET /v1/jobs", "kind": "status", "status": 500, "count": 100},
    )
    caplog.set_level(logging.WARNING, logger="scenario_api")
    async with fast_client(settings, reconcile_attempts=2) as client:
        await client.get_model("flux.1-dev")
        task = asyncio.ensure_future(client.submit(_request(prompt="nobody knows", seed=9876)))
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert emulator.requests("GET", "/v1/jobs")  # it looked
    assert "no job was found" in caplog.text and "'nobody knows'" in caplog.text and "9876" in caplog.text
    assert "sent at 20" in caplog.text  # the send time, ISO


# --------------------------------------------------------------------------- public methods: typed failures only


def _public_calls(job_id: str) -> dict[str, Any]:
    big = make_png(1100, 1100, "noise", mode="RGB")  # above the inline limit: image_ref uploads it
    return {
        "get_model": lambda c: c.get_model("flux.1-dev"),
        "list_models": lambda c: c.list_models(max_pages=1),
        "validate": lambda c: c.validate(_request()),
        "quote": lambda c: c.quote(_request()),
        "submit": lambda c: c.submit(_request()),
        "get_job": lambda c: c.get_job(job_id),
        "list_jobs": lambda c: c.list_jobs(max_pages=1),
        "wait_for_job": lambda c: c.wait_for_job(job_id),
        "cancel_job": lambda c: c.cancel_job(job_id, best_effort=False),
        "get_asset": lambda c: c.get_asset("asset_demo_canny"),
        "download_asset": lambda c: c.download_asset("asset_demo_canny"),
        "download_all": lambda c: c.download_all(["asset_demo_canny", "asset_demo_pose"]),
        "upload_image": lambda c: c.upload_image(make_png(32, 32, "noise", seed=3), "x.png"),
        "image_ref": lambda c: c.image_ref(big),
        "generate": lambda c: c.generate(_request()),
    }


FAILURE_MODES = {
    "server-error": [{"target": "* /v1/*", "kind": "status", "status": 500, "count": 1000}],
    "not-json": [{"target": "* /v1/*", "kind": "status", "status": 200, "body": "<html>oops</html>", "count": 1000}],
    "refused-key": [{"target": "* /v1/*", "kind": "status", "status": 401, "count": 1000}],
    "dropped-after-accept": [{"target": "* /v1/*", "kind": "disconnect_after_accept", "count": 1000}],
    "dropped-before-accept": [{"target": "* /v1/*", "kind": "disconnect_before_accept", "count": 1000}],
    "too-slow": [{"target": "* /v1/*", "kind": "slow", "delay": 0.5, "count": 1000}],
    "file-host-down": [{"target": "GET /cdn/*", "kind": "status", "status": 503, "count": 1000}],
}


@pytest.mark.parametrize("mode", list(FAILURE_MODES))
async def test_every_public_method_raises_only_scenario_errors(emulator, settings, mode):
    with emulator.api() as api:
        job_id = api.post(
            "/generate/controlnet",
            json={"prompt": "x", "modelId": "flux.1-dev", "modality": "canny", "controlImageId": "asset_demo_canny"},
        ).json()["job"]["jobId"]
    emulator.faults(*FAILURE_MODES[mode])
    outcomes: dict[str, str] = {}
    for name, call in _public_calls(job_id).items():
        async with fast_client(
            settings,
            retry=RetryPolicy.fast(max_attempts=2),
            timeout=0.2,
            submit_timeout=0.2,
            cancel_timeout=0.2,
            reconcile_attempts=1,
            download_timeout=0.2,
            max_poll_failures=1,
        ) as client:
            try:
                await call(client)
            except ScenarioError as exc:
                outcomes[name] = "ScenarioError"
                assert str(exc), name
            except BaseException as exc:  # noqa: BLE001 - the point of the test
                outcomes[name] = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
            else:
                outcomes[name] = "ok"
    escaped = {k: v for k, v in outcomes.items() if v not in ("ScenarioError", "ok")}
    assert escaped == {}
    if mode != "file-host-down":
        assert outcomes["get_model"] == "ScenarioError"  # the fault really hit
    else:
        assert outcomes["download_asset"] == "ScenarioError"


async def test_every_public_method_raises_cancelled_error_when_cancelled(emulator, settings):
    with emulator.api() as api:
        job_id = api.post(
            "/generate/controlnet",
            json={"prompt": "x", "modelId": "flux.1-dev", "modality": "canny", "controlImageId": "asset_demo_canny"},
        ).json()["job"]["jobId"]
    emulator.faults({"target": "* /v1/*", "kind": "slow", "delay": 2.0, "count": 1000, "process_first": False})
    for name, call in _public_calls(job_id).items():
        async with fast_client(settings, cancel_timeout=0.5) as client:
            task = asyncio.ensure_future(call(client))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert task.cancelled(), name


def test_a_client_whose_server_is_gone_raises_transport_errors():
    down = Emulator(credentials=(TEST_KEY, TEST_SECRET))
    url = down.start()
    down.stop()

    async def run() -> dict[str, str]:
        found: dict[str, str] = {}
        settings = Settings(base_url=url, credentials=Credentials(TEST_KEY, TEST_SECRET))
        for name, call in _public_calls("job_gone").items():
            async with fast_client(settings) as client:
                try:
                    await call(client)
                    found[name] = "ok"
                except ScenarioError:
                    found[name] = "ScenarioError"
                except BaseException as exc:  # noqa: BLE001
                    found[name] = type(exc).__name__
        return found

    outcomes = asyncio.run(run())
    assert {k: v for k, v in outcomes.items() if v != "ScenarioError"} == {}


# --------------------------------------------------------------------------- a quote never uploads


def _asset_posts(emulator: Any) -> list[dict[str, Any]]:
    return emulator.requests("POST", "/v1/assets")


async def test_a_quote_on_a_custom_model_uploads_nothing_however_often_it_runs(emulator, settings):
    request = ControlNetRequest(
        prompt="a stone bridge", model_id=BFL, modality="depth:0.6", control_image=MAP, width=256, height=192
    )
    img2img = ControlNetRequest(
        prompt="a stone bridge", model_id=BFL, modality="canny", control_image=MAP, image=MAP, strength=0.5
    )
    async with fast_client(settings) as client:
        quotes = [await client.quote(request) for _ in range(5)] + [await client.quote(img2img) for _ in range(3)]
    assert all(q.creative_units > 0 for q in quotes)
    assert _asset_posts(emulator) == []
    dry_runs = emulator.requests("POST", f"/v1/generate/custom/{BFL}")
    assert len(dry_runs) == 8 and all(e["status"] == 269 for e in dry_runs)
    assert all("controlImage" not in e["body"] and "image" not in e["body"] for e in dry_runs)
    assert _jobs(emulator) == []


async def test_a_custom_model_quote_costs_what_the_submit_costs(emulator, settings):
    request = ControlNetRequest(
        prompt="same price", model_id=BFL, modality="canny", control_image=MAP, num_samples=2, seed=5
    )
    async with fast_client(settings) as client:
        quote = await client.quote(request)
        submission = await client.submit(request)
    assert submission.creative_units == pytest.approx(quote.creative_units)
    assert len(_asset_posts(emulator)) == 1  # the paid run uploads its map, once


async def test_the_web_quote_route_on_a_custom_model_uploads_nothing(env_for_emulator, comfy, pack):
    web_api = submodule("nodes.web_api")
    web_api.clear_model_cache()
    values = {
        "prompt": "a house",
        "model_id": BFL,
        "modality": "canny",
        "modality_strength": 1.0,
        "modalities": "",
        "num_samples": 1,
        "guidance": 3.5,
        "num_inference_steps": 28,
        "width": 0,
        "height": 0,
        "seed": 42,
        "scheduler": "default",
        "control_start": -1,
        "control_end": -1,
        "img2img": False,
        "batch": 1,
    }
    try:
        answers = [await web_api.quote(values) for _ in range(4)]
        answers.append(await web_api.quote({**values, "img2img": True}))
    finally:
        web_api.clear_model_cache()
    assert all(a["creative_units"] > 0 for a in answers), answers
    assert _asset_posts(env_for_emulator) == []
    assert len(env_for_emulator.requests("POST", f"/v1/generate/custom/{BFL}")) == 5


# --------------------------------------------------------------------------- the upload service


def test_upload_keys_name_the_account_never_the_secret():
    one = Settings(base_url="https://api.example.test/v1", credentials=Credentials("api_key_one", "secret-a"))
    same_key = Settings(base_url="https://api.example.test/v1", credentials=Credentials("api_key_one", "secret-b"))
    other = Settings(base_url="https://api.example.test/v1", credentials=Credentials("api_key_two", "secret-a"))
    elsewhere = Settings(base_url="https://other.example.test/v1", credentials=Credentials("api_key_one", "secret-a"))
    keys = {name: UploadService.key(s, "abc") for name, s in [("one", one), ("same", same_key), ("other", other)]}
    keys["elsewhere"] = UploadService.key(elsewhere, "abc")
    assert keys["one"] == keys["same"]  # the account is the key id; the secret plays no part
    assert len({keys["one"], keys["other"], keys["elsewhere"]}) == 3
    text = repr(keys)
    assert "secret" not in text and "api_key_one" not in text


async def test_one_image_is_uploaded_once_for_client_and_nodes_alike(emulator, settings):
    UPLOADS.clear()
    png = make_png(1100, 1100, "noise", mode="RGB", seed=21)
    try:
        async with fast_client(settings) as a, fast_client(settings) as b:
            refs = await asyncio.gather(a.image_ref(png), b.image_ref(png), UPLOADS.asset_id(a, png, "node.png"))
            again = await b.image_ref(png)  # remembered process-wide; checked with a free read first
    finally:
        UPLOADS.clear()
    assert len(set(refs)) == 1 and again == refs[0] and refs[0].startswith("asset_")
    assert len(_asset_posts(emulator)) == 1
    assert emulator.requests("GET", f"/v1/assets/{refs[0]}")  # the reuse was verified


# --------------------------------------------------------------------------- the watching loop


async def test_wait_for_job_takes_a_next_poll_delay_function(emulator, settings):
    seen: list[tuple[str, int]] = []

    def next_delay(job: Job, polls: int) -> float:
        seen.append((str(job.status), polls))
        return 0.01

    async with fast_client(settings, poll_interval=5.0) as client:  # the fixed interval would take seconds
        submission = await client.submit(_request())
        job = await client.wait_for_job(submission.job_id, next_delay=next_delay)
    assert job.status is JobStatus.SUCCESS
    assert seen and [n for _, n in seen] == list(range(1, len(seen) + 1))
    assert all(status in {s.value for s in JobStatus} for status, _ in seen)


def test_job_status_is_an_enum_that_keeps_unknown_text():
    assert Job.from_api({"job": {"jobId": "job_a", "status": "in-progress"}}).status is JobStatus.IN_PROGRESS
    odd = Job.from_api({"job": {"jobId": "job_b", "status": "paused-by-admin"}})
    assert odd.status == "paused-by-admin" and not isinstance(odd.status, JobStatus) and not odd.terminal
    assert JobStatus.SUCCESS == "success" and JobStatus.SUCCESS.terminal and JobStatus.QUEUED.queued


def test_no_stop_callbacks_remain_in_the_client_signatures():
    import inspect

    for name, fn in inspect.getmembers(ScenarioClient, inspect.isfunction):
        assert "should_cancel" not in inspect.signature(fn).parameters, name
