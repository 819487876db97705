"""Waiting, progress, cancel, failures, quotes, credits, auth, secrets, loop binding, uploads, project scoping."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import TEST_KEY, TEST_SECRET
from helpers import data_url, fast_client, make_png

from scenario_api import (
    INLINE_IMAGE_LIMIT,
    AuthenticationError,
    ConfigurationError,
    ControlNetRequest,
    Credentials,
    InsufficientCreditsError,
    JobCanceledError,
    JobFailedError,
    OutcomeUnknownError,
    ScenarioClient,
    ScenarioError,
    ScenarioTimeoutError,
    Settings,
    TransportError,
    ValidationError,
)

MAP_PNG = make_png(64, 64, "edges")
MAP = data_url(MAP_PNG)
SUBMIT = "POST /v1/generate/*"
ORDER = ["pending", "queued", "warming-up", "in-progress", "finalizing", "success"]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client hanging up early is expected here
        pass


_client = fast_client


def _request(**changes) -> ControlNetRequest:
    fields = {"prompt": "a red fox in snow", "modality": "canny", "control_image": MAP}
    fields.update(changes)
    return ControlNetRequest(**fields)


def _cancel_actions(emulator, job_id: str) -> list[dict]:
    return emulator.requests("POST", f"/v1/jobs/{job_id}/action")


# --------------------------------------------------------------------------- progress and outcomes


async def test_progress_callbacks_see_rising_progress_and_the_state_sequence(emulator, settings):
    seen: list[tuple[str, float | None]] = []
    async with _client(settings) as client:
        submission = await client.submit(_request())
        job = await client.wait_for_job(submission.job_id, on_progress=lambda j: seen.append((j.status, j.progress)))
    assert job.status == "success" and len(job.asset_ids) == 1
    states = [s for s, _ in seen]
    assert states[-1] == "success" and "in-progress" in states
    ranks = [ORDER.index(s) for s in states]
    assert ranks == sorted(ranks)  # never goes backwards
    running = [p for s, p in seen if s == "in-progress"]
    assert running == sorted(running) and any(0 < p < 1 for p in running)


async def test_async_progress_callback_is_awaited(emulator, settings):
    calls = []

    async def on_progress(job):
        await asyncio.sleep(0)
        calls.append(job.status)

    async with _client(settings) as client:
        job, images = await client.generate(_request(), on_progress=on_progress)
    assert calls[-1] == "success" and len(images) == 1 and job.asset_ids


async def test_job_failure_surfaces_reason_and_hint(emulator, settings):
    emulator.fault(
        target=SUBMIT, kind="job_failure", error="Content rejected by the safety filter", hint="Try a different prompt"
    )
    async with _client(settings) as client:
        submission = await client.submit(_request())
        with pytest.raises(JobFailedError) as info:
            await client.wait_for_job(submission.job_id)
    err = info.value
    assert err.job_id == submission.job_id and err.reason == "Content rejected by the safety filter"
    assert err.hint == "Try a different prompt"
    assert "safety filter" in str(err) and "Try a different prompt" in str(err) and submission.job_id in str(err)


async def test_job_canceled_elsewhere_raises_job_canceled(emulator, settings):
    async with _client(settings) as client:
        submission = await client.submit(_request())
        with emulator.api() as api:
            assert api.post(f"/jobs/{submission.job_id}/action", json={"action": "cancel"}).status_code == 200
        with pytest.raises(JobCanceledError) as info:
            await client.wait_for_job(submission.job_id)
    assert info.value.job_id == submission.job_id


async def test_stuck_job_times_out_with_its_id_and_is_not_canceled(emulator, settings):
    emulator.fault(target=SUBMIT, kind="stuck_job")
    async with _client(settings) as client:
        submission = await client.submit(_request())
        with pytest.raises(ScenarioTimeoutError) as info:
            await client.wait_for_job(submission.job_id, timeout=0.4)
    assert info.value.job_id == submission.job_id and submission.job_id in str(info.value)
    assert "Poll Job" in str(info.value)
    assert _cancel_actions(emulator, submission.job_id) == []


async def test_queue_time_does_not_count_against_the_timeout(emulator, settings):
    emulator.config(timing={"queued": 0.8, "warming_up": 0.0, "running": 0.1})
    async with _client(settings) as client:
        submission = await client.submit(_request())
        job = await client.wait_for_job(submission.job_id, timeout=0.5)
    assert job.status == "success"


# --------------------------------------------------------------------------- cancel


async def test_cancelling_the_wait_sends_one_cancel_and_raises_cancelled(emulator, settings):
    emulator.config(timing={"running": 5.0})

    async with _client(settings, poll_interval=1.0) as client:
        submission = await client.submit(_request())

        def on_progress(job):
            if job.status == "in-progress":
                waiting.cancel()

        waiting = asyncio.ensure_future(client.wait_for_job(submission.job_id, on_progress=on_progress))
        with pytest.raises(asyncio.CancelledError):
            await waiting
        final = await client.get_job(submission.job_id)
    assert waiting.cancelled()
    (action,) = _cancel_actions(emulator, submission.job_id)
    assert action["body"] == {"action": "cancel"} and action["status"] == 200
    assert final.status == "canceled"


async def test_cancellation_is_seen_during_a_slow_poll(emulator, settings):
    async with _client(settings) as client:
        submission = await client.submit(_request())
        emulator.fault(target="GET /v1/jobs/*", kind="slow", delay=3.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiting = asyncio.ensure_future(client.wait_for_job(submission.job_id))
        loop.call_later(0.2, waiting.cancel)
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert loop.time() - started < 1.5  # not held up by the 3 s answer
    assert len(_cancel_actions(emulator, submission.job_id)) == 1


async def test_task_cancellation_cancels_the_remote_job(emulator, settings):
    emulator.config(timing={"running": 5.0})
    running = asyncio.Event()

    def on_progress(job):
        if job.status == "in-progress":
            running.set()

    async with _client(settings) as client:
        submission = await client.submit(_request())
        task = asyncio.create_task(client.wait_for_job(submission.job_id, on_progress=on_progress))
        await asyncio.wait_for(running.wait(), 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        final = await client.get_job(submission.job_id)
    assert len(_cancel_actions(emulator, submission.job_id)) == 1
    assert final.status == "canceled"


async def test_cancel_of_a_finished_job_returns_none(emulator, settings):
    async with _client(settings) as client:
        job, _ = await client.generate(_request())
        assert await client.cancel_job(job.job_id) is None
    (action,) = _cancel_actions(emulator, job.job_id)
    assert action["status"] == 400


async def test_cancel_network_errors_are_swallowed_only_when_best_effort():
    settings = Settings(base_url="http://127.0.0.1:9/v1", credentials=Credentials("k", "s"))
    async with _client(settings, cancel_timeout=0.5) as client:
        assert await client.cancel_job("job_abc") is None
        with pytest.raises(TransportError, match="job_abc"):
            await client.cancel_job("job_abc", best_effort=False)


# --------------------------------------------------------------------------- quotes, credits, auth


async def test_quote_is_a_269_dry_run_and_creates_no_job(emulator, settings):
    async with _client(settings) as client:
        quote = await client.quote(_request(num_samples=2))
    assert quote.creative_units > 0
    calls = emulator.requests("POST", "/v1/generate/controlnet")
    assert [(e["query"].get("dryRun"), e["status"]) for e in calls] == [("true", 269)]
    with emulator.api() as api:
        assert api.get("/jobs").json()["jobs"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"creativeUnitsCost": None},
        {"creativeUnitsCost": "12"},
        {"creativeUnitsCost": -1},
        {"creativeUnitsCost": True},
        {"creativeUnitsCost": {"total": 5}},
    ],
    ids=["missing", "null", "string", "negative", "bool", "object"],
)
async def test_a_quote_without_a_usable_cost_is_an_error_not_free(emulator, settings, body):
    emulator.fault(target="POST /v1/generate/*", kind="status", status=269, body=body, query={"dryRun": "true"})
    async with _client(settings) as client:
        with pytest.raises(ScenarioError, match="price quote without a cost"):
            await client.quote(_request())
    assert len(emulator.requests("POST", "/v1/generate/*")) == 1


async def test_a_dry_run_that_comes_back_with_a_job_gets_that_job_canceled(emulator, settings):
    job = {"job": {"jobId": "job_x", "status": "queued"}}
    emulator.fault(target="POST /v1/generate/*", kind="status", status=200, body=job, query={"dryRun": "true"})
    async with _client(settings) as client:
        with pytest.raises(ScenarioError) as info:
            await client.quote(_request())
    assert info.value.job_id == "job_x" and "cancel was sent" in str(info.value)
    (cancel,) = _cancel_actions(emulator, "job_x")
    assert cancel["body"] == {"action": "cancel"}


async def test_insufficient_credits(emulator, settings):
    emulator.config(credits=0)
    async with _client(settings) as client:
        with pytest.raises(InsufficientCreditsError) as info:
            await client.submit(_request())
    assert info.value.status == 402 and "creative units" in str(info.value)
    assert len(emulator.requests("POST", "/v1/generate/*")) == 1


async def test_401_error_never_contains_the_secret(emulator):
    wrong_secret = "wrong-secret-XYZ-987"
    settings = Settings(base_url=emulator.url, credentials=Credentials(TEST_KEY, wrong_secret))
    async with _client(settings) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_model("flux.1-dev")
        client_repr = repr(client)
    err = info.value
    assert err.status == 401 and "SCENARIO_API_KEY" in str(err)
    token = base64.b64encode(f"{TEST_KEY}:{wrong_secret}".encode()).decode()
    for text in (str(err), repr(err), client_repr, repr(settings), str(settings.credentials)):
        assert wrong_secret not in text and token not in text
    (entry,) = emulator.log()
    assert entry["auth_ok"] is False and entry["auth_header_present"] is True


def test_client_without_credentials_refuses_to_start():
    with pytest.raises(ConfigurationError) as info:
        ScenarioClient(Settings(base_url="https://api.cloud.scenario.com/v1"))
    assert "SCENARIO_API_KEY" in str(info.value) and "SCENARIO_API_SECRET" in str(info.value)


@pytest.mark.parametrize(
    "url, shown",
    [
        ("ftp://api.example.com/v1?token=tok-SECRET-1#frag", "ftp://api.example.com/v1"),
        ("api.example.com/v1?access_token=tok-SECRET-1", "api.example.com/v1"),
        ("localhost:8080/v1?key=tok-SECRET-1", "localhost:8080/v1"),
        ("gopher://user:tok-SECRET-1@host.example:70/v1", "gopher://host.example:70/v1"),
        ("https://api.example.com/v1?token=tok-SECRET-1", "https://api.example.com/v1"),  # valid, but a query
    ],
)
def test_a_bad_base_url_is_echoed_without_query_or_user_info(url, shown):
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"SCENARIO_API_URL": url})
    text = str(info.value)
    assert f"got '{shown}'" in text and "tok-SECRET-1" not in text and "SCENARIO_API_URL" in text


def test_reprs_hide_secrets():
    creds = Credentials("api_key_visible", TEST_SECRET)
    settings = Settings(base_url="https://api.cloud.scenario.com/v1", credentials=creds, project_id="proj_1")
    client = ScenarioClient(settings)
    for text in (repr(creds), str(creds), repr(settings), str(settings), repr(client), repr(client._transport)):
        assert TEST_SECRET not in text and "api_key_visible" not in text
        assert "Basic " not in text


async def test_logs_hold_no_secret_and_no_image_data(emulator, settings, caplog):
    big = data_url(make_png(256, 256, "noise"))
    with caplog.at_level(logging.DEBUG):
        async with _client(settings) as client:
            job, _ = await client.generate(_request(control_image=big))
            await client.upload_image(MAP_PNG, "map.png")
    auth = base64.b64encode(f"{TEST_KEY}:{TEST_SECRET}".encode()).decode()
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert job.job_id in everything  # job ids are logged
    assert TEST_SECRET not in everything and auth not in everything
    ours = "\n".join(
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("scenario_api") and not r.name.startswith("scenario_api.emulator")
    )
    assert "POST /generate/controlnet -> 200" in ours
    assert "data:image" not in ours
    assert not re.search(r"[A-Za-z0-9+/=]{120,}", ours)  # no base64 payloads, no signed URL queries
    assert big.split(",", 1)[1][:60] not in everything


# --------------------------------------------------------------------------- loops


def test_client_refuses_a_second_event_loop(emulator, settings):
    client = _client(settings)
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        model = first.run_until_complete(client.get_model("flux.1-dev"))
        assert model.family == "flux"
        with pytest.raises(RuntimeError, match="different event loop"):
            second.run_until_complete(client.get_job("job_abc"))
        first.run_until_complete(client.aclose())
        # after closing, the client can be opened again in another loop
        assert second.run_until_complete(client.get_model("flux.1-dev")) is model
        second.run_until_complete(client.aclose())
    finally:
        first.close()
        second.close()


def test_separate_clients_in_separate_loops_work(emulator, settings):
    async def use() -> str:
        async with _client(settings) as client:
            return (await client.get_model("stable-diffusion-v1-5")).family

    assert asyncio.run(use()) == "sd-1_5"
    assert asyncio.run(use()) == "sd-1_5"  # nothing cached in a module global


# --------------------------------------------------------------------------- uploads, project


async def test_upload_image_bytes_and_data_url(emulator, settings):
    async with _client(settings) as client:
        asset = await client.upload_image(MAP_PNG, "control.png")
        again = await client.upload_image(MAP, "control-2.png")
        data = await client.download_asset(asset.asset_id)
    assert asset.asset_id.startswith("asset_") and again.asset_id != asset.asset_id
    uploads = emulator.requests("POST", "/v1/assets")
    assert [u["body"]["name"] for u in uploads] == ["control.png", "control-2.png"]
    assert uploads[0]["body"]["image"].startswith("<data URL")
    assert data.startswith(b"\x89PNG")


async def test_upload_rejects_non_images_without_a_request(emulator, settings):
    async with _client(settings) as client:
        with pytest.raises(ValidationError, match="PNG, JPEG or WebP"):
            await client.upload_image(b"plain text", "x.png")
        with pytest.raises(ValidationError, match="name"):
            await client.upload_image(MAP_PNG, "  ")
        with pytest.raises(ValidationError, match="data URL"):
            await client.upload_image("data:image/png;base64,%%%", "x.png")
    assert emulator.log() == []


async def test_upload_is_resent_only_after_a_refusal(emulator, settings):
    """POST /assets follows the paid rules: 429/503 mean nothing was created, so it is sent again."""
    emulator.faults(
        {"target": "POST /v1/assets", "kind": "status", "status": 429, "retry_after": 1},
        {"target": "POST /v1/assets", "kind": "status", "status": 503, "retry_after": 0},
    )
    async with _client(settings) as client:
        asset = await client.upload_image(MAP_PNG, "retry.png")
    assert asset.asset_id.startswith("asset_")
    assert [e["status"] for e in emulator.requests("POST", "/v1/assets")] == [429, 503, 200]


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "disconnect_after_accept"},
        {"kind": "status", "status": 500},
        {"kind": "status", "status": 502},
    ],
    ids=["disconnect-after-accept", "500", "502"],
)
async def test_ambiguous_upload_failure_is_not_retried(emulator, settings, fault):
    emulator.fault(target="POST /v1/assets", **fault)
    async with _client(settings) as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.upload_image(MAP_PNG, "lost.png")
    text = str(info.value)
    assert "may or may not have created an asset" in text and "'lost.png'" in text
    assert "harmless" in text and "unused asset" in text and "Nothing was retried" in text
    assert len(emulator.requests("POST", "/v1/assets")) == 1


async def test_upload_read_timeout_is_not_retried(emulator, settings):
    emulator.fault(target="POST /v1/assets", kind="slow", delay=1.0)
    async with _client(settings, timeout=0.3) as client:
        with pytest.raises(OutcomeUnknownError, match="may or may not have created an asset"):
            await client.upload_image(MAP_PNG, "slow.png")
    assert len(emulator.requests("POST", "/v1/assets")) == 1


async def test_stop_during_an_upload_429_wait_uploads_nothing(emulator, settings):
    emulator.fault(target="POST /v1/assets", kind="status", status=429, retry_after=30)
    loop = asyncio.get_running_loop()
    async with _client(settings) as client:
        started = loop.time()
        uploading = asyncio.ensure_future(client.upload_image(MAP_PNG, "stopped.png"))
        loop.call_later(0.3, uploading.cancel)
        with pytest.raises(asyncio.CancelledError):
            await uploading
    assert loop.time() - started < 2  # not the 30 s Retry-After
    assert [e["status"] for e in emulator.requests("POST", "/v1/assets")] == [429]


async def test_reads_stop_when_cancelled(emulator, settings):
    """Model, asset and job look-ups stop retrying at once when the caller's task is cancelled."""
    emulator.faults(
        *(
            {"target": f"GET /v1/{what}/*", "kind": "status", "status": 503, "retry_after": 30}
            for what in ("models", "assets", "jobs")
        )
    )
    calls = {
        "models": lambda c: c.get_model("flux.1-dev"),
        "assets": lambda c: c.get_asset("asset_demo_canny"),
        "jobs": lambda c: c.get_job("job_abc"),
    }
    loop = asyncio.get_running_loop()
    async with _client(settings) as client:
        for what, call in calls.items():
            started = loop.time()
            reading = asyncio.ensure_future(call(client))
            loop.call_later(0.2, reading.cancel)
            with pytest.raises(asyncio.CancelledError):
                await reading
            assert loop.time() - started < 2, what
            assert [e["status"] for e in emulator.requests("GET", f"/v1/{what}/*")] == [503], what


async def test_image_ref_inlines_small_images_and_uploads_big_ones_once(emulator, settings):
    big = make_png(1100, 1100, "noise", mode="RGB")
    assert len(big) * 4 / 3 > INLINE_IMAGE_LIMIT
    async with _client(settings) as client:
        small_ref = await client.image_ref(MAP_PNG)
        assert small_ref.startswith("data:image/png;base64,")
        assert emulator.log() == []
        first = await client.image_ref(big)
        second = await client.image_ref(big)
        submission = await client.submit(_request(control_image=None, control_image_id=first))
    assert first == second and first.startswith("asset_")
    assert len(emulator.requests("POST", "/v1/assets")) == 1
    assert submission.job.input.get("controlImageId") == first


async def test_project_id_is_sent_on_every_api_call(emulator):
    settings = Settings(base_url=emulator.url, credentials=Credentials(TEST_KEY, TEST_SECRET), project_id="proj_test-1")
    async with _client(settings) as client:
        job, _ = await client.generate(_request())
        await client.list_jobs()
    log = emulator.log()
    api_calls = [e for e in log if e["path"].startswith("/v1/")]
    assert api_calls and all(e["query"].get("projectId") == "proj_test-1" for e in api_calls)
    files = [e for e in log if e["path"].startswith("/cdn/")]
    assert files and all("projectId" not in e["query"] for e in files)


async def test_headers_on_api_requests(settings):
    """User-Agent, Accept and Content-Type as the brief requires (checked on a loopback echo server)."""
    seen: list[dict[str, str]] = []

    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append({k.lower(): v for k, v in self.headers.items()})
            body = json.dumps({"job": {"jobId": "job_echo", "status": "canceled"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

        def log_message(self, *args) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        echo = Settings(
            base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", credentials=Credentials(TEST_KEY, TEST_SECRET)
        )
        async with _client(echo) as client:
            job = await client.cancel_job("job_echo")
            with pytest.raises(JobCanceledError):
                await client.wait_for_job("job_echo")
    finally:
        server.shutdown()
        server.server_close()
    post, get = seen
    assert job is not None and job.status == "canceled"
    assert post["user-agent"].startswith("scenario-comfyui/0.1.0")
    assert post["accept"] == "application/json" and post["content-type"] == "application/json"
    assert post["authorization"] == "Basic " + base64.b64encode(f"{TEST_KEY}:{TEST_SECRET}".encode()).decode()
    assert "content-type" not in get


async def test_unknown_job_status_is_a_protocol_error(settings):
    class Odd(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({"job": {"jobId": "job_odd", "status": "succeeded"}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), Odd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        odd = Settings(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", credentials=Credentials("k", "s"))
        async with _client(odd) as client:
            with pytest.raises(ScenarioError, match="unknown status 'succeeded'") as info:
                await client.wait_for_job("job_odd")
    finally:
        server.shutdown()
        server.server_close()
    assert info.value.job_id == "job_odd"


async def test_httpx_log_lines_carry_no_signed_url_query(emulator, settings, caplog):
    """httpx logs every request at INFO, as ComfyUI runs; signed CDN queries must not reach that log."""
    with caplog.at_level(logging.INFO, logger="httpx"):
        async with _client(settings) as client:
            job, images = await client.generate(_request())
    assert images
    lines = [r.getMessage() for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert any("/cdn/assets/" in line for line in lines), lines  # the download was logged...
    assert not any("Signature=" in line or "Policy=" in line for line in lines), lines  # ...without its signature
