"""The paid-request fault matrix, through the ComfyUI nodes and the emulator over real HTTP.

Every case drives Scenario ControlNet Generate through one hostile-network fault and asserts:

* the number of jobs Scenario created (paid) for the one intent;
* zero credentials sent to the asset host (``/cdn``);
* a cancel wherever a job was abandoned, none otherwise;
* the final state of the intent in the node's job ledger (``<user dir>/scenario/ledger.sqlite3``).

``python -m pytest tests/test_fault_matrix.py -s`` prints the table case -> expected -> observed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import make_array, wait_until
from pack_loader import image_tensor, submodule

from scenario_api.ledger import Ledger

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

SUBMIT = "POST /v1/generate/*"
PAID = {"dryRun": None}
SLOW = {"queued": 0.05, "warming_up": 0.05, "running": 3.0}
TABLE: list[str] = []


def widgets(**over: Any) -> dict[str, Any]:
    base = {
        "prompt": "a lighthouse in a storm",
        "model_id": "flux.1-dev",
        "modality": "canny",
        "modality_strength": 1.0,
        "num_samples": 1,
        "guidance": 3.5,
        "num_inference_steps": 28,
        "width": 0,
        "height": 0,
        "seed": 11,
    }
    base.update(over)
    return base


def jobs_created(emulator) -> list[str]:
    return [e["job_id"] for e in emulator.requests("POST", "/v1/generate/*") if e.get("job_id")]


def cancels(emulator) -> list[str]:
    return [e["path"].split("/")[3] for e in emulator.requests("POST", "/v1/jobs/*/action")]


def cdn_credentials(emulator) -> int:
    return sum(1 for e in emulator.requests("GET", "/cdn/*") if e["auth_header_present"])


def ledger_of(comfy) -> Ledger:
    return Ledger(Path(comfy.user_dir) / "scenario" / "ledger.sqlite3")


def submit_records(comfy) -> list[Any]:
    with ledger_of(comfy) as lg:
        return [r for r in lg.recent(limit=50) if r.kind == "submit"]


async def run_node(pack, seed: int = 11, **over: Any):
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    return await node.generate(**widgets(seed=seed, **over), control_image=image_tensor(make_array(64, 64)))


def note(case: str, expected: str, observed: str) -> None:
    TABLE.append(f"| {case} | {expected} | {observed} |")


@pytest.fixture(scope="module", autouse=True)
def _print_table():
    yield
    if TABLE:
        print("\n| case | expected | observed |\n|---|---|---|\n" + "\n".join(TABLE))


# --------------------------------------------------------------------------- one intent, one job

DELIVERED_CASES = {
    "no fault": [],
    "503 after Scenario accepted": [{"kind": "status_after_accept", "status": 503, "retry_after": 0}],
    "429 after Scenario accepted": [{"kind": "status_after_accept", "status": 429, "retry_after": 0}],
    "502 after Scenario accepted": [{"kind": "status_after_accept", "status": 502}],
    "503 after accept, every try": [{"kind": "status_after_accept", "status": 503, "retry_after": 0, "count": 4}],
    "HTML page with 200 after accept": [{"kind": "broken_body", "mode": "html"}],
    "malformed JSON with 200": [{"kind": "broken_body", "mode": "malformed_json"}],
    "200 without a job id": [{"kind": "broken_body", "mode": "no_job_id"}],
    "200 with a malformed job id": [{"kind": "broken_body", "mode": "bad_job_id"}],
    "reply lost (disconnect after accept)": [{"kind": "disconnect_after_accept"}],
    "refused 503 (nothing created), then ok": [{"kind": "status", "status": 503, "retry_after": 0}],
    "refused 429 twice, then ok": [{"kind": "status", "status": 429, "retry_after": 0, "count": 2}],
}


@pytest.mark.parametrize("case", list(DELIVERED_CASES))
async def test_one_intent_ends_with_exactly_one_job_of_its_own(node_env, comfy, pack, case):
    node_env.config(timing={"queued": 0.01, "warming_up": 0.01, "running": 0.05})
    faults = [{"target": SUBMIT, "query": PAID, **f} for f in DELIVERED_CASES[case]]
    if faults:
        node_env.faults(*faults)
    node_env.faults(
        {"target": "GET /cdn/*", "kind": "truncated_download"}, {"target": "GET /cdn/*", "kind": "expired_url"}
    )
    images, job_ids, asset_ids = await run_node(pack)
    created = jobs_created(node_env)
    assert len(created) == 1, created  # never paid twice
    assert job_ids == created[0] and images.shape[0] == 1
    assert cdn_credentials(node_env) == 0
    assert cancels(node_env) == []
    [record] = submit_records(comfy)
    assert record.state == "succeeded" and record.job_id == created[0]
    assert record.asset_ids == tuple(asset_ids.split(","))
    with ledger_of(comfy) as lg:
        assert [r.asset_id for r in lg.receipts(record.id)] == list(record.asset_ids)
    note(
        case,
        "1 paid job, delivered, 0 cancels, ledger succeeded",
        f"{len(created)} job, delivered, 0 cancels, {record.state}",
    )


# --------------------------------------------------------------------------- refused, failed, stopped


async def test_refused_to_the_end_pays_nothing_and_records_refused(node_env, comfy, pack):
    errors = submodule("scenario_api.errors")
    node_env.fault(target=SUBMIT, query=PAID, kind="status", status=503, retry_after=0, count=10)
    with pytest.raises(errors.ScenarioError):
        await run_node(pack)
    assert jobs_created(node_env) == [] and cancels(node_env) == []
    [record] = submit_records(comfy)
    assert record.state == "refused"
    assert len(node_env.requests("GET", "/v1/jobs")) >= 1  # it checked that no job was created before giving up
    note("503 refused on every try", "0 paid jobs, error, ledger refused", f"0 jobs, error, {record.state}")


async def test_a_failed_job_is_recorded_failed(node_env, comfy, pack):
    errors = submodule("scenario_api.errors")
    node_env.fault(target=SUBMIT, query=PAID, kind="job_failure", error="NSFW content detected")
    with pytest.raises(errors.JobFailedError):
        await run_node(pack)
    [record] = submit_records(comfy)
    assert len(jobs_created(node_env)) == 1 and record.state == "failed" and "NSFW" in (record.note or "")
    assert cancels(node_env) == []
    note("job fails on Scenario", "1 paid job, JobFailedError, ledger failed", f"1 job, failed, {record.state}")


async def test_stop_mid_wait_cancels_the_job_and_records_it(node_env, comfy, pack):
    node_env.config(timing=SLOW)
    task = asyncio.ensure_future(run_node(pack))
    await wait_until(lambda: len(jobs_created(node_env)) == 1)
    await asyncio.sleep(0.2)
    comfy.interrupted = True
    with pytest.raises(comfy.InterruptProcessingException):
        await asyncio.wait_for(task, 10)
    [job] = jobs_created(node_env)
    assert cancels(node_env) == [job]
    [record] = submit_records(comfy)
    assert record.state == "canceled" and record.job_id == job
    note(
        "Stop while the job runs",
        "1 paid job, 1 cancel, ledger canceled",
        f"1 job, {len(cancels(node_env))} cancel, {record.state}",
    )


async def test_reply_lost_and_no_job_found_is_outcome_unknown_with_the_details(node_env, comfy, pack, monkeypatch):
    errors = submodule("scenario_api.errors")
    sessions = submodule("nodes.sessions")  # where the prompt's shared client is built
    options = sessions.client_options
    monkeypatch.setattr(sessions, "client_options", lambda: {**options(), "reconcile_interval": 0.05})
    node_env.faults(
        {"target": SUBMIT, "query": PAID, "kind": "status", "status": 502},  # ambiguous, and nothing was created
    )
    with pytest.raises(errors.OutcomeUnknownError) as info:
        await run_node(pack)
    text = str(info.value)
    assert "seed 11" in text and "lighthouse" in text and "sent at" in text
    [record] = submit_records(comfy)
    assert record.state == "uncertain" and "sent at" in (record.note or "")
    assert jobs_created(node_env) == [] and cancels(node_env) == []
    note("502 that created nothing", "0 jobs, outcome unknown (time, prompt, seed)", f"0 jobs, {record.state}")


# --------------------------------------------------------------------------- the server's clock


async def test_a_job_from_before_the_send_is_never_adopted_even_if_the_server_ignores_created_after(
    node_env, comfy, pack
):
    # An identical job, created 60 s before our send by the server's clock, is in the job list (the
    # server ignores createdAfter). Our own reply is lost: only our own job may be adopted.
    node_env.config(clock_skew=-60)
    with node_env.api() as api:
        body = {
            "prompt": widgets()["prompt"],
            "modelId": "flux.1-dev",
            "modality": "canny",
            "controlImageId": "asset_demo_canny",
            "seed": 11,
            "numSamples": 1,
        }
        old = api.post("/generate/controlnet", json=body).json()["job"]["jobId"]
    node_env.config(clock_skew=0, ignore_created_after=True)
    node_env.fault(target=SUBMIT, query=PAID, kind="disconnect_after_accept")
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    images, job_ids, _ = await node.generate(**widgets(), control_image_id="asset_demo_canny")
    created = jobs_created(node_env)
    assert created[0] == old and len(created) == 2
    assert job_ids == created[1] != old
    [record] = submit_records(comfy)
    assert record.job_id == created[1] and record.state == "succeeded" and record.adopted
    note(
        "identical older job listed (createdAfter ignored), reply lost",
        "adopt only the new job",
        f"adopted {'new' if job_ids != old else 'OLD'} job",
    )


# --------------------------------------------------------------------------- two identical requests


async def test_two_identical_requests_one_reply_lost_each_gets_its_own_job(node_env, comfy, pack):
    """A batch of two identical maps (same seed): A's reply is lost, B's is slow. Neither adopts the other's job."""
    node_env.faults(
        {"target": SUBMIT, "query": PAID, "kind": "disconnect_after_accept"},
        {"target": SUBMIT, "query": PAID, "kind": "slow", "delay": 0.8},
    )
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    twins = image_tensor(make_array(64, 64), make_array(64, 64))
    images, job_ids, _ = await node.generate(**widgets(), control_image=twins)
    created = jobs_created(node_env)
    assert len(created) == 2 and sorted(job_ids.split(",")) == sorted(created)
    assert cancels(node_env) == [] and images.shape[0] == 2
    records = submit_records(comfy)
    assert sorted(r.job_id for r in records) == sorted(created) and {r.state for r in records} == {"succeeded"}
    note(
        "two identical requests, one reply lost, one slow",
        "2 intents -> 2 own jobs, 0 cancels",
        f"{len(set(job_ids.split(',')))} own jobs, {len(cancels(node_env))} cancels",
    )


async def test_a_guess_displaced_by_the_real_owner_never_cancels_its_job(node_env, comfy, pack):
    """B's job exists, B's reply is slow; A's 502 created nothing, so A's lookup finds B's job and adopts it.
    B's reply then names it: B keeps it and delivers; A ends "outcome unknown" and never cancels B's job."""
    errors = submodule("scenario_api.errors")
    node_env.config(timing={"queued": 0.05, "warming_up": 0.05, "running": 2.5})
    node_env.faults(
        {"target": SUBMIT, "query": PAID, "kind": "slow", "delay": 1.0},  # B's reply
        {"target": SUBMIT, "query": PAID, "kind": "status", "status": 502},  # A: nothing created
    )
    b = asyncio.ensure_future(run_node(pack))
    await wait_until(lambda: len(jobs_created(node_env)) == 1)
    a = asyncio.ensure_future(run_node(pack))
    results = await asyncio.gather(a, b, return_exceptions=True)
    created = jobs_created(node_env)
    assert len(created) == 1
    assert isinstance(results[0], errors.OutcomeUnknownError) and "another run" in str(results[0])
    assert not isinstance(results[1], BaseException) and results[1][1] == created[0]
    assert cancels(node_env) == []
    states = sorted((r.state, r.job_id) for r in submit_records(comfy))
    assert states == sorted([("succeeded", created[0]), ("uncertain", None)])
    note(
        "A adopts B's job by guess, B's slow reply names it",
        "B delivers, A outcome unknown, 0 cancels",
        f"B delivered, A {type(results[0]).__name__}, {len(cancels(node_env))} cancels",
    )


# --------------------------------------------------------------------------- reuse


async def test_reuse_after_a_restart_pays_nothing_and_no_reuse_pays_once(node_env, comfy, pack, monkeypatch):
    job_ledger = submodule("nodes.job_ledger")
    uploads = submodule("scenario_api.uploads")
    first = await run_node(pack, seed=21)
    [job] = jobs_created(node_env)
    job_ledger.close_all()  # a ComfyUI restart: no open ledger, no upload memory, no cache
    uploads.UPLOADS.clear()
    comfy.texts.clear()
    again = await run_node(pack, seed=21, unique_id="9")
    assert jobs_created(node_env) == [job]  # 0 new submits
    assert again[1] == job and bool((again[0] == first[0]).all())
    assert any(f"reused job {job}" in text for _, text in comfy.texts)
    monkeypatch.setenv("SCENARIO_REUSE", "0")
    await run_node(pack, seed=21)
    assert len(jobs_created(node_env)) == 2  # exactly 1 new submit
    note(
        "same request and seed after a restart", "0 new submits; SCENARIO_REUSE=0: 1", "0 new; 1 with SCENARIO_REUSE=0"
    )


async def test_reuse_submits_anew_when_the_results_are_gone(node_env, comfy, pack):
    await run_node(pack, seed=22)
    node_env.reset()  # the emulator forgets the job and its assets
    submodule("scenario_api.uploads").UPLOADS.clear()
    images, job_ids, _ = await run_node(pack, seed=22)
    assert len(jobs_created(node_env)) == 1 and job_ids == jobs_created(node_env)[0]
    note("reuse, but the old assets are gone", "submit anew (1 job)", f"{len(jobs_created(node_env))} new job")


async def test_a_changed_seed_is_a_new_request(node_env, comfy, pack):
    await run_node(pack, seed=23)
    await run_node(pack, seed=24)
    assert len(jobs_created(node_env)) == 2


def test_the_ledger_records_where_each_intent_came_from(comfy, pack, node_env):
    async def go():
        await run_node(pack, seed=25, unique_id="17")

    asyncio.run(go())
    [record] = submit_records(comfy)
    assert record.origin.startswith("node 17 prompt") and record.seed == 25 and record.cost and record.prompt
    assert json.dumps(record.request)  # the canonical request is kept for recovery


# --------------------------------------------------------------------------- across processes, and at start-up


async def test_a_job_another_process_holds_in_the_ledger_is_never_adopted(emulator, settings, tmp_path):
    """Another process's intent holds job J in the shared ledger; our identical request gets a 502 that created
    nothing, and J is the only match in the job list: it must not be adopted."""
    from helpers import fast_client

    from scenario_api import ControlNetRequest, OutcomeUnknownError
    from scenario_api.ledger import Ledger, account_id

    request = ControlNetRequest(
        prompt="shared machine", control_image_id="asset_demo_canny", modality="canny", seed=31, width=256, height=256
    )
    with Ledger(tmp_path / "ledger.sqlite3") as lg:
        async with fast_client(settings, ledger=lg, reconcile_attempts=2) as client:
            body = await client.validate(request.with_seed())
            with emulator.api() as api:
                theirs = api.post("/generate/controlnet", json=body).json()["job"]["jobId"]
            other = lg.begin(
                kind="submit",
                fingerprint="ab" * 32,
                account=account_id("another-key-on-this-machine"),
                endpoint="/generate/controlnet",
                base_url=settings.base_url,
                origin="node 1 prompt other-process",
            )
            assert lg.claim(other, theirs).won
            emulator.fault(target=SUBMIT, query=PAID, kind="status", status=502)
            with pytest.raises(OutcomeUnknownError):
                await client.submit(request)
        assert lg.holder_of(theirs) == other
        mine = [r for r in lg.recent() if r.id != other]
        assert [r.state for r in mine] == ["uncertain"] and mine[0].job_id is None
    assert emulator.requests("POST", "/v1/jobs/*/action") == []
    note("identical job held by another process (ledger), our 502", "not adopted, outcome unknown", "not adopted")


def test_start_up_line_names_unfinished_jobs(comfy, pack):
    job_ledger = submodule("nodes.job_ledger")
    ledger_mod = submodule("scenario_api.ledger")
    assert job_ledger.startup_report(comfy.user_dir) is None  # nothing pending: nothing said
    lg = job_ledger.node_ledger(comfy.user_dir)
    i = lg.begin(
        kind="submit",
        fingerprint="cd" * 32,
        account=ledger_mod.account_id("k"),
        endpoint="/generate/controlnet",
        base_url="http://x/v1",
        origin="node 4 prompt p",
    )
    lg.claim(i, "job_leftover01")
    text = job_ledger.startup_report(comfy.user_dir)
    assert "1 job(s)" in text and "job_leftover01" in text
    assert "jobs --local --pending" in text and "resume" in text and "Poll Job" in text


async def test_downloads_that_keep_failing_name_the_paid_job_and_a_rerun_costs_nothing(node_env, comfy, pack):
    errors = submodule("scenario_api.errors")
    node_env.fault(target="GET /cdn/*", kind="truncated_download", count=20)
    with pytest.raises(errors.DownloadError) as info:
        await run_node(pack, seed=41)
    [job] = jobs_created(node_env)
    assert job in str(info.value) and "not charged again" in str(info.value)
    node_env.clear_faults()
    _, job_ids, _ = await run_node(pack, seed=41)
    assert job_ids == job and jobs_created(node_env) == [job]  # reused: paid once
    assert cdn_credentials(node_env) == 0
    note(
        "every download fails, then the user re-queues",
        "error names the job; re-run reuses it (0 new jobs)",
        "named; 0 new jobs",
    )
