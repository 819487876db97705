"""Retry rules over real HTTP: paid submits are never sent twice after they may have landed.

The emulator's fault plan plays 429/503/5xx answers, dropped connections and
slow answers; its request log is the ground truth for how many paid requests
reached the server.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import socket
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
from conftest import FAST_TIMING, TEST_KEY, TEST_SECRET
from helpers import data_url, fast_client, make_png

from scenario_api import (
    ControlNetRequest,
    Credentials,
    OutcomeUnknownError,
    RateLimitedError,
    RetryPolicy,
    ScenarioClient,
    ServerError,
    Settings,
    TransportError,
)
from scenario_api.emulator import Emulator
from scenario_api.transport import server_clock_offset

MAP = data_url(make_png(64, 64, "edges"))
SUBMIT = "POST /v1/generate/*"
PAID_ONLY = {"dryRun": None}


def _client(settings, **kw) -> ScenarioClient:
    kw.setdefault("reconcile_attempts", 3)
    return fast_client(settings, **kw)


def _request(**changes) -> ControlNetRequest:
    fields = {"prompt": "a lighthouse at dusk", "modality": "canny", "control_image": MAP, "seed": 1234}
    fields.update(changes)
    return ControlNetRequest(**fields)


def _submits(emulator) -> list[dict]:
    return emulator.requests("POST", "/v1/generate/*")


def _emulator_jobs(emulator) -> list[dict]:
    with emulator.api() as api:
        return api.get("/jobs").json()["jobs"]


# --------------------------------------------------------------------------- refused: wait and resend


async def test_429_with_retry_after_waits_then_submits_once(emulator, settings):
    emulator.fault(target=SUBMIT, kind="status", status=429, retry_after=1)
    started = time.monotonic()
    async with _client(settings) as client:
        submission = await client.submit(_request())
    elapsed = time.monotonic() - started
    assert elapsed >= 0.9  # the Retry-After was honoured, not the tiny test backoff
    statuses = [e["status"] for e in _submits(emulator)]
    assert statuses == [429, 200]
    assert not submission.adopted and submission.job_id.startswith("job_")
    assert [j["jobId"] for j in _emulator_jobs(emulator)] == [submission.job_id]


async def test_503_waits_then_submits_once(emulator, settings):
    emulator.fault(target=SUBMIT, kind="status", status=503, retry_after=0.3)
    waits: list[tuple[float, str]] = []
    async with _client(settings) as client:
        submission = await client.submit(_request(), on_wait=lambda s, why: waits.append((s, why)))
    assert [e["status"] for e in _submits(emulator)] == [503, 200]
    assert waits == [(0.3, "service unavailable")]
    assert not submission.adopted


async def test_remaining_seconds_in_the_body_is_honoured(emulator, settings):
    body = {"reason": "Too many requests", "remainingSeconds": 0.6, "details": {"actionName": "generate"}}
    emulator.fault(target=SUBMIT, kind="status", status=429, body=body)
    started = time.monotonic()
    async with _client(settings) as client:
        await client.submit(_request())
    assert time.monotonic() - started >= 0.55
    assert [e["status"] for e in _submits(emulator)] == [429, 200]


async def test_persistent_429_gives_up_with_rate_limited_error(emulator, settings):
    emulator.fault(target=SUBMIT, kind="status", status=429, retry_after=0, count=10)
    async with _client(settings, paid_retry=RetryPolicy.fast(max_attempts=3)) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.submit(_request())
    assert info.value.status == 429 and "throttling" in str(info.value)
    assert [e["status"] for e in _submits(emulator)] == [429, 429, 429]
    assert _emulator_jobs(emulator) == []


# --------------------------------------------------------------------------- never reached: resend


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connect_error_on_submit_is_retried(caplog):
    """The server is down when the paid request is tried, and back a moment later."""
    port = _free_port()
    first = Emulator(port=port, credentials=(TEST_KEY, TEST_SECRET), timing=FAST_TIMING)
    url = first.start()
    settings = Settings(base_url=url, credentials=Credentials(TEST_KEY, TEST_SECRET))
    second = Emulator(port=port, credentials=(TEST_KEY, TEST_SECRET), timing=FAST_TIMING)
    policy = RetryPolicy(max_attempts=8, base=0.15, cap=0.3, rng=lambda: 1.0)
    try:
        async with _client(settings, paid_retry=policy) as client:
            await client.get_model("flux.1-dev")  # cached: the next request is the paid one
            first.stop()
            restart = threading.Timer(0.4, second.start)
            restart.start()
            with caplog.at_level(logging.INFO, logger="scenario_api"):
                submission = await client.submit(_request())
            restart.join()
        assert not submission.adopted
        submits = [e for e in second.request_log() if e["path"].startswith("/v1/generate/")]
        assert len(submits) == 1 and submits[0]["status"] == 200
        assert [e for e in first.request_log() if e["path"].startswith("/v1/generate/")] == []
        assert any("retrying the generation request" in r.getMessage() for r in caplog.records)
    finally:
        first.stop()
        second.stop()


async def test_connect_errors_exhausted_say_nothing_was_sent():
    settings = Settings(base_url=f"http://127.0.0.1:{_free_port()}/v1", credentials=Credentials("k", "s"))
    async with _client(settings, retry=RetryPolicy.fast(max_attempts=2)) as client:
        with pytest.raises(TransportError) as info:
            await client.get_model("flux.1-dev")
    assert "Nothing was sent" in str(info.value) and "2 attempts" in str(info.value)


# --------------------------------------------------------------------------- ambiguous: reconcile, never resend


async def test_500_on_submit_is_never_resent_and_reports_outcome_unknown(emulator, settings):
    emulator.fault(target=SUBMIT, kind="status", status=500, query=PAID_ONLY)
    async with _client(settings) as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.submit(_request(prompt="a unique tower"))
    assert len(_submits(emulator)) == 1  # exactly one paid request
    lookups = emulator.requests("GET", "/v1/jobs")
    assert len(lookups) == 3 and all("createdAfter" in e["query"] for e in lookups)
    err = info.value
    text = str(err)
    assert err.since and err.since in text
    assert "HTTP 500" in text and "'a unique tower'" in text and "seed 1234" in text
    assert "Poll Job" in text and "not charged twice" in text


async def test_disconnect_after_accept_adopts_the_job(emulator, settings):
    emulator.fault(target=SUBMIT, kind="disconnect_after_accept")
    async with _client(settings) as client:
        submission = await client.submit(_request())
        job = await client.wait_for_job(submission.job_id)
    submits = _submits(emulator)
    assert len(submits) == 1 and submits[0]["status"] is None  # no answer ever reached us
    jobs = _emulator_jobs(emulator)
    assert submission.adopted and [j["jobId"] for j in jobs] == [submission.job_id]
    assert job.status == "success"


async def test_slow_submit_and_read_timeout_adopts_without_resubmitting(emulator, settings):
    emulator.fault(target=SUBMIT, kind="slow", delay=1.0)
    async with _client(settings, submit_timeout=0.3, reconcile_attempts=6, reconcile_interval=0.2) as client:
        submission = await client.submit(_request())
    assert submission.adopted
    assert len(_submits(emulator)) == 1
    assert [j["jobId"] for j in _emulator_jobs(emulator)] == [submission.job_id]


async def test_reconciliation_follows_short_and_empty_pages(emulator, settings):
    emulator.config(short_pages=True)
    with emulator.api() as api:
        for i in range(4):  # other jobs, newer pages hide ours behind tokens
            body = {"prompt": f"other {i}", "modelId": "flux.1-dev", "modality": "canny", "controlImage": MAP}
            assert api.post("/generate/controlnet", json=body).status_code == 200
    emulator.fault(target=SUBMIT, kind="disconnect_after_accept")
    async with _client(settings) as client:
        submission = await client.submit(_request(prompt="the one to find"))
    assert submission.adopted and submission.job.input["prompt"] == "the one to find"
    pages = emulator.requests("GET", "/v1/jobs")
    assert any("paginationToken" in e["query"] for e in pages)


async def test_disconnect_before_accept_on_submit_is_ambiguous_not_resent(emulator, settings):
    emulator.fault(target=SUBMIT, kind="disconnect_before_accept", query=PAID_ONLY)
    async with _client(settings, reconcile_attempts=2) as client:
        with pytest.raises(OutcomeUnknownError, match="closed the connection"):
            await client.submit(_request())
    assert len(_submits(emulator)) == 1
    assert _emulator_jobs(emulator) == []


async def test_a_job_is_never_adopted_twice(emulator, settings):
    request = _request(prompt="same request twice")
    async with _client(settings, reconcile_attempts=2) as client:
        first = await client.submit(request)
        emulator.fault(target=SUBMIT, kind="status", status=502, query=PAID_ONLY)
        with pytest.raises(OutcomeUnknownError):
            await client.submit(request)  # the first job matches the echo but is ours already
    assert not first.adopted
    assert len(_submits(emulator)) == 2


async def test_different_seed_is_not_adopted(emulator, settings):
    with emulator.api() as api:
        body = {"prompt": "look-alike", "modelId": "flux.1-dev", "modality": "canny", "controlImage": MAP, "seed": 1}
        assert api.post("/generate/controlnet", json=body).status_code == 200
    emulator.fault(target=SUBMIT, kind="status", status=504, query=PAID_ONLY)
    async with _client(settings, reconcile_attempts=1) as client:
        with pytest.raises(OutcomeUnknownError):
            await client.submit(_request(prompt="look-alike", seed=2))


# --------------------------------------------------------------------------- reads


async def test_reads_retry_5xx_and_honour_retry_after(emulator, settings):
    async with _client(settings) as client:
        submission = await client.submit(_request())
        emulator.clear_log()
        emulator.fault(target="GET /v1/jobs/*", kind="status", status=503, retry_after=0.4, count=2)
        started = time.monotonic()
        job = await client.get_job(submission.job_id)
    assert time.monotonic() - started >= 0.75
    assert job.job_id == submission.job_id
    assert [e["status"] for e in emulator.requests("GET", "/v1/jobs/*")] == [503, 503, 200]


async def test_reads_retry_429_500_and_dropped_connections(emulator, settings):
    emulator.faults(
        {"target": "GET /v1/models/*", "kind": "status", "status": 429, "retry_after": 0},
        {"target": "GET /v1/models/*", "kind": "status", "status": 500},
        {"target": "GET /v1/models/*", "kind": "disconnect_before_accept"},
    )
    async with _client(settings, retry=RetryPolicy.fast(max_attempts=5)) as client:
        model = await client.get_model("flux.1-dev")
    assert model.family == "flux"
    assert [e["status"] for e in emulator.requests("GET", "/v1/models/*")] == [429, 500, None, 200]


async def test_reads_give_up_after_max_attempts(emulator, settings):
    emulator.fault(target="GET /v1/assets/*", kind="status", status=502, count=10)
    async with _client(settings, retry=RetryPolicy.fast(max_attempts=3)) as client:
        with pytest.raises(ServerError) as info:
            await client.get_asset("asset_demo_canny")
    assert info.value.status == 502
    assert len(emulator.requests("GET", "/v1/assets/*")) == 3


async def test_quote_is_retried_like_a_read(emulator, settings):
    emulator.fault(target=SUBMIT, kind="status", status=500, query={"dryRun": "true"})
    async with _client(settings) as client:
        quote = await client.quote(_request())
    assert quote.creative_units > 0
    assert [e["status"] for e in _submits(emulator)] == [500, 269]
    assert _emulator_jobs(emulator) == []


async def test_cancellation_interrupts_a_retry_wait(emulator, settings):
    async with _client(settings) as client:
        submission = await client.submit(_request())
        emulator.fault(target="GET /v1/jobs/*", kind="status", status=503, retry_after=30)
        waiting = asyncio.ensure_future(client.wait_for_job(submission.job_id))
        asyncio.get_running_loop().call_later(0.2, waiting.cancel)
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert time.monotonic() - started < 5  # not the 30 s Retry-After
    assert len(emulator.requests("POST", f"/v1/jobs/{submission.job_id}/action")) == 1


# --------------------------------------------------------------------------- adoption: the echo must be our request


def _marker(url: str) -> str:
    """How the emulator echoes an inline image in ``metadata.input`` (computed independently here)."""
    return f"<data URL sha256:{hashlib.sha256(url.encode()).hexdigest()[:16]}>"


async def test_adoption_tells_apart_jobs_that_differ_only_in_control_map_and_size(emulator, settings):
    decoy_request = _request(control_image=None, control_image_id="asset_demo_pose", width=512, height=512)
    ours = _request(control_image=None, control_image_id="asset_demo_canny", width=768, height=768)
    async with _client(settings) as other:  # another run's job: same prompt and seed, not "known" to our client
        decoy = await other.submit(decoy_request)
    async with _client(settings, reconcile_attempts=1) as client:
        emulator.fault(target=SUBMIT, kind="disconnect_before_accept", query=PAID_ONLY)
        with pytest.raises(OutcomeUnknownError):
            await client.submit(ours)  # only the look-alike exists: it must not be adopted
        emulator.fault(target=SUBMIT, kind="disconnect_after_accept", query=PAID_ONLY)
        submission = await client.submit(ours)
    assert submission.adopted and submission.job_id != decoy.job_id
    echo = submission.job.input
    assert echo["controlImageId"] == "asset_demo_canny" and (echo["width"], echo["height"]) == (768, 768)
    assert len(_submits(emulator)) == 3  # decoy, lost-before-accept, lost-after-accept: nothing resent
    assert {j["jobId"] for j in _emulator_jobs(emulator)} == {decoy.job_id, submission.job_id}


async def test_concurrent_lost_replies_each_adopt_their_own_job(emulator, settings):
    maps = [data_url(make_png(64, 64, "edges")), data_url(make_png(64, 64, "checker"))]
    emulator.fault(target=SUBMIT, kind="disconnect_after_accept", query=PAID_ONLY, count=2)
    async with _client(settings) as client:
        await client.get_model("flux.1-dev")  # both submits then go straight to the paid request
        submissions = await asyncio.gather(*(client.submit(_request(control_image=m)) for m in maps))
    assert all(s.adopted for s in submissions)
    assert len({s.job_id for s in submissions}) == 2
    for submission, sent in zip(submissions, maps, strict=True):
        assert submission.job.input["controlImage"] == _marker(sent)
    assert len(_submits(emulator)) == 2


@pytest.mark.parametrize(
    "theirs, ours",
    [
        ({"width": 1024}, {"width": 768}),
        ({"guidance": 3.5}, {"guidance": 5.0}),
        ({"num_inference_steps": 20}, {"num_inference_steps": 28}),
        ({"negative_prompt": "blurry"}, {"negative_prompt": "dark"}),
        ({"control_image": data_url(make_png(64, 64, "shapes"))}, {}),
        (
            {"model_id": "stable-diffusion-v1-5", "scheduler": "EulerDiscrete"},
            {"model_id": "stable-diffusion-v1-5", "scheduler": "DDIM"},
        ),
    ],
    ids=["width", "guidance", "steps", "negative-prompt", "inline-map", "scheduler"],
)
async def test_a_look_alike_differing_in_one_setting_is_not_adopted(emulator, settings, theirs, ours):
    async with _client(settings) as other:
        decoy = await other.submit(_request(**theirs))
    emulator.fault(target=SUBMIT, kind="disconnect_before_accept", query=PAID_ONLY)
    async with _client(settings, reconcile_attempts=1) as client:
        with pytest.raises(OutcomeUnknownError):
            await client.submit(_request(**ours))
    assert [j["jobId"] for j in _emulator_jobs(emulator)] == [decoy.job_id]


async def test_the_same_request_is_still_adopted_when_the_echo_names_the_scheduler_without_suffix(emulator, settings):
    """Equivalent spellings must not block adoption (the emulator echoes the canonical name)."""
    emulator.fault(target=SUBMIT, kind="disconnect_after_accept", query=PAID_ONLY)
    async with _client(settings) as client:
        submission = await client.submit(_request(model_id="stable-diffusion-v1-5", scheduler="EulerDiscrete"))
    assert submission.adopted and submission.job.input["scheduler"] == "EulerDiscreteScheduler"


# --------------------------------------------------------------------------- Stop before the paid request lands


async def test_stop_during_a_429_wait_submits_nothing(emulator, settings):
    emulator.fault(target=SUBMIT, kind="status", status=429, retry_after=3, query=PAID_ONLY)
    loop = asyncio.get_running_loop()
    async with _client(settings) as client:
        await client.get_model("flux.1-dev")
        started = loop.time()
        submitting = asyncio.ensure_future(client.submit(_request()))
        loop.call_later(0.5, submitting.cancel)
        with pytest.raises(asyncio.CancelledError):
            await submitting
    assert loop.time() - started < 2  # not the 3 s Retry-After
    assert emulator.requests("GET", "/v1/jobs") == []  # refused, so nothing to look for
    assert [e["status"] for e in _submits(emulator)] == [429]
    assert _emulator_jobs(emulator) == []


async def test_a_pending_cancellation_sends_no_paid_request_at_all(emulator, settings):
    async with _client(settings) as client:
        generating = asyncio.ensure_future(client.generate(_request()))
        generating.cancel()  # cancelled before it ever ran
        with pytest.raises(asyncio.CancelledError):
            await generating
    assert generating.cancelled()
    assert _submits(emulator) == [] and _emulator_jobs(emulator) == []


async def test_stop_during_a_connect_failure_wait_gives_up_without_sending():
    """The server goes away; while the client waits to reconnect, the user presses Stop."""
    down = Emulator(credentials=(TEST_KEY, TEST_SECRET), timing=FAST_TIMING)
    settings = Settings(base_url=down.start(), credentials=Credentials(TEST_KEY, TEST_SECRET))
    waits: list[str] = []
    submitting: asyncio.Future | None = None

    def on_wait(seconds: float, why: str) -> None:
        waits.append(why)
        assert submitting is not None
        submitting.cancel()

    policy = RetryPolicy(max_attempts=5, base=5.0, cap=5.0, rng=lambda: 1.0)
    try:
        async with _client(settings, paid_retry=policy) as client:
            await client.get_model("flux.1-dev")  # cached: the next request is the paid one
            down.stop()
            loop = asyncio.get_running_loop()
            started = loop.time()
            submitting = asyncio.ensure_future(client.submit(_request(), on_wait=on_wait))
            with pytest.raises(asyncio.CancelledError):
                await submitting
        assert loop.time() - started < 2  # not the 5 s backoff
    finally:
        down.stop()
    assert waits == ["could not connect"]
    assert [e for e in down.request_log() if e["path"].startswith("/v1/generate/")] == []


# --------------------------------------------------------------------------- the caller's task is cancelled mid-submit


def _created_job_id(emulator) -> str:
    (submit,) = _submits(emulator)  # exactly one paid request
    assert submit.get("job_id", "").startswith("job_"), submit
    return submit["job_id"]


def _assert_lookup_then_cancel(emulator, job_id: str) -> None:
    """After the one POST: a job list lookup, then a cancel of the job that POST created."""
    calls = [(e["method"], e["path"]) for e in emulator.log()]
    submit_at = calls.index(("POST", "/v1/generate/controlnet"))
    lookup_at = calls.index(("GET", "/v1/jobs"), submit_at)
    cancel_at = calls.index(("POST", f"/v1/jobs/{job_id}/action"), lookup_at)
    assert submit_at < lookup_at < cancel_at
    (cancel,) = emulator.requests("POST", "/v1/jobs/*/action")
    assert cancel["body"] == {"action": "cancel"} and cancel["status"] == 200


async def test_cancelling_the_caller_while_the_submit_is_on_the_wire_cancels_the_job(emulator, settings, caplog):
    emulator.config(timing={"queued": 5})  # the job is still cancellable when we get to it
    emulator.fault(target=SUBMIT, kind="slow", delay=1.0, query=PAID_ONLY)  # job created at once, answer late
    caplog.set_level(logging.WARNING, logger="scenario_api")
    async with _client(settings) as client:
        await client.get_model("flux.1-dev")
        task = asyncio.ensure_future(client.submit(_request(prompt="cancelled mid-flight")))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    job_id = _created_job_id(emulator)
    _assert_lookup_then_cancel(emulator, job_id)
    assert [(j["jobId"], j["status"]) for j in _emulator_jobs(emulator)] == [(job_id, "canceled")]
    assert f"Scenario job {job_id} was created while the caller was being cancelled; cancelling it" in caplog.text


def test_asyncio_run_teardown_mid_submit_cancels_the_job_before_returning(emulator, settings):
    """ComfyUI's prompt ends (a sibling failed): asyncio.run cancels the leftover submit task once."""
    emulator.config(timing={"queued": 5})
    emulator.fault(target=SUBMIT, kind="slow", delay=1.0, query=PAID_ONLY)
    outcome: dict[str, BaseException] = {}

    async def node() -> None:
        try:
            async with _client(settings) as client:
                await client.submit(_request(prompt="left behind at teardown"))
        except BaseException as exc:
            outcome["raised"] = exc
            raise

    async def main() -> None:
        asyncio.ensure_future(node())
        await asyncio.sleep(0.3)  # the paid request is on the wire; main returns, asyncio.run tears down

    asyncio.run(main())
    assert isinstance(outcome.get("raised"), asyncio.CancelledError)  # never swallowed
    job_id = _created_job_id(emulator)
    _assert_lookup_then_cancel(emulator, job_id)  # all of it happened before asyncio.run returned
    assert [j["status"] for j in _emulator_jobs(emulator)] == ["canceled"]


async def test_cancelling_the_caller_during_the_lookup_after_a_lost_reply_cancels_the_job(emulator, settings):
    emulator.config(timing={"queued": 5})
    emulator.faults(
        {"target": SUBMIT, "kind": "disconnect_after_accept", "query": PAID_ONLY},
        {"target": "GET /v1/jobs", "kind": "slow", "delay": 1.0, "process_first": False},
    )
    async with _client(settings) as client:
        task = asyncio.ensure_future(client.submit(_request(prompt="cancelled while reconciling")))
        for _ in range(100):
            await asyncio.sleep(0.02)
            if emulator.requests("GET", "/v1/jobs"):
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    job_id = _created_job_id(emulator)
    (cancel,) = emulator.requests("POST", "/v1/jobs/*/action")
    assert cancel["path"] == f"/v1/jobs/{job_id}/action" and cancel["status"] == 200
    assert [j["status"] for j in _emulator_jobs(emulator)] == ["canceled"]


async def test_cancelling_the_caller_during_a_429_wait_looks_for_nothing(emulator, settings):
    """Scenario refused the only attempt: nothing was created, so there is nothing to look up or cancel."""
    emulator.fault(target=SUBMIT, kind="status", status=429, retry_after=3, query=PAID_ONLY)
    async with _client(settings) as client:
        await client.get_model("flux.1-dev")
        task = asyncio.ensure_future(client.submit(_request()))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [e["status"] for e in _submits(emulator)] == [429]
    assert emulator.requests("GET", "/v1/jobs") == [] and emulator.requests("POST", "/v1/jobs/*") == []


# --------------------------------------------------------------------------- adoption never takes someone else's job


async def test_a_lost_reply_adopts_its_own_job_not_the_identical_one_another_client_got(emulator, settings):
    request = _request(prompt="two identical runs", seed=77)
    emulator.faults(
        {"target": SUBMIT, "kind": "disconnect_after_accept", "query": PAID_ONLY, "count": 1},  # A's reply only
        {"target": "GET /v1/jobs", "kind": "slow", "delay": 0.5, "process_first": False, "count": 1},
    )
    async with _client(settings) as a, _client(settings) as b:
        await a.get_model("flux.1-dev")
        await b.get_model("flux.1-dev")
        task = asyncio.ensure_future(a.submit(request))
        for _ in range(100):  # A's submit reaches the server first and takes the fault
            await asyncio.sleep(0.02)
            if _submits(emulator):
                break
        mine = _created_job_id(emulator)
        theirs = await b.submit(request)  # succeeds while A's lookup is still on its way
        adopted = await task
    assert not theirs.adopted and theirs.job_id != mine
    assert adopted.adopted and adopted.job_id == mine
    assert len(_submits(emulator)) == 2


async def test_a_job_another_client_was_given_is_never_adopted(emulator, settings):
    request = _request(prompt="same request, two clients", seed=78)
    async with _client(settings) as other:
        first = await other.submit(request)
    emulator.fault(target=SUBMIT, kind="status", status=502, query=PAID_ONLY)
    async with _client(settings, reconcile_attempts=2) as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.submit(request)
    assert first.job_id not in str(info.value)
    assert len(_submits(emulator)) == 2


async def test_an_identical_run_from_3_s_earlier_is_not_adopted_and_the_window_is_narrow(emulator, settings):
    """A 502 that created nothing must not adopt an identical run from a few seconds earlier."""
    request = _request(prompt="run it again", seed=79)
    async with _client(settings) as earlier_client:
        earlier = await earlier_client.submit(request)
    await asyncio.sleep(3.0)
    emulator.fault(target=SUBMIT, kind="status", status=502, query=PAID_ONLY)
    async with _client(settings, reconcile_attempts=1) as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.submit(request)
    assert earlier.job_id not in str(info.value) and "No matching job" in str(info.value)
    assert len(_submits(emulator)) == 2
    # The lookup starts a few seconds (the default skew, plus the Date header's 1 s resolution) before the send.
    (lookup,) = emulator.requests("GET", "/v1/jobs")
    after = datetime.strptime(lookup["query"]["createdAfter"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    sent = _submits(emulator)[-1]["time"]
    assert sent - 7.0 < after.timestamp() <= sent


def test_the_server_clock_offset_comes_from_the_date_header():
    now = 1_800_000_000.0
    ahead = httpx.Response(200, headers={"Date": email.utils.formatdate(now + 3600, usegmt=True)})
    assert server_clock_offset(ahead, now=now) == pytest.approx(3600, abs=1)
    assert server_clock_offset(httpx.Response(200), now=now) is None
    assert server_clock_offset(httpx.Response(200, headers={"Date": "yesterday"}), now=now) is None


async def test_several_unclaimed_matches_are_reported_not_picked(emulator, settings):
    request = _request(prompt="twins", seed=80)
    async with _client(settings, reconcile_attempts=2) as client:
        body = await client.validate(request)
        with emulator.api() as api:
            twins = [api.post("/generate/controlnet", json=body).json()["job"]["jobId"] for _ in range(2)]
        emulator.fault(target=SUBMIT, kind="status", status=502, query=PAID_ONLY)
        with pytest.raises(OutcomeUnknownError) as info:
            await client.submit(request)
    text = str(info.value)
    assert all(job_id in text for job_id in twins)
    assert "None was adopted" in text and "Poll Job" in text and "HTTP 502" in text
    assert len(_submits(emulator)) == 3 and len(emulator.requests("GET", "/v1/jobs")) == 2
