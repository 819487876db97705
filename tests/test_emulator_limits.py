"""The emulator's team limits (429 above the parallel-jobs limit, GET /teams/{id}/limits) and progress profiles."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from scenario_api.emulator import Timing, timeline
from scenario_api.emulator.options import EmulatorConfig

SLOW = {"queued": 0.0, "warming_up": 0.0, "running": 30.0}


def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "prompt": "a red fox",
        "modelId": "flux.1-dev",
        "modality": "canny",
        "controlImageId": "asset_demo_canny",
        "numSamples": 1,
        "width": 256,
        "height": 256,
        "seed": 7,
    }
    b.update(over)
    return b


CUSTOM_BODY = {"prompt": "a fox", "controlImage": "asset_demo_canny", "controlModality": "canny", "seed": 3}


@pytest.fixture
def api(emulator):
    with emulator.api() as client:
        yield client


def _balance(emulator) -> float:
    return httpx.get(emulator.origin + "/_emulator/state", trust_env=False).json()["balance"]


def test_submit_above_the_parallel_limit_gets_scenarios_429_and_creates_nothing(emulator, api):
    emulator.config(parallel_inferences=2, timing=SLOW)
    ids = [api.post("/generate/controlnet", json=body(seed=i)).json()["job"]["jobId"] for i in range(2)]
    before = _balance(emulator)
    r = api.post("/generate/controlnet", json=body(seed=9))
    assert r.status_code == 429
    payload = r.json()
    assert payload["reason"] == "Too many requests"
    assert payload["details"] == {"actionName": "generate", "actionLimit": 2}
    assert 0 < payload["remainingSeconds"] <= 30.0  # until the first running job ends
    assert _balance(emulator) == before  # not charged
    assert len(api.get("/jobs").json()["jobs"]) == 2  # no job created
    # A dry run is never limited; a canceled job frees its slot.
    assert api.post("/generate/controlnet?dryRun=true", json=body(seed=9)).status_code == 269
    assert api.post(f"/jobs/{ids[0]}/action", json={"action": "cancel"}).status_code == 200
    assert api.post("/generate/controlnet", json=body(seed=9)).status_code == 200
    assert [e["status"] for e in emulator.requests("POST", "/v1/generate/controlnet")] == [200, 200, 429, 269, 200]


def test_finished_jobs_stop_counting(emulator, api):
    emulator.config(parallel_inferences=1, timing={"queued": 0.0, "warming_up": 0.0, "running": 0.05})
    job_id = api.post("/generate/controlnet", json=body()).json()["job"]["jobId"]
    deadline = time.monotonic() + 5
    while api.get(f"/jobs/{job_id}").json()["job"]["status"] != "success":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert api.post("/generate/controlnet", json=body(seed=8)).status_code == 200


def test_custom_jobs_have_their_own_limit(emulator, api):
    emulator.config(parallel_inferences=1, parallel_custom_jobs=1, timing=SLOW)
    assert api.post("/generate/controlnet", json=body()).status_code == 200
    assert api.post("/generate/custom/model_bfl-flux-1-dev", json=CUSTOM_BODY).status_code == 200
    r = api.post("/generate/custom/model_bfl-flux-1-dev", json={**CUSTOM_BODY, "seed": 4})
    assert r.status_code == 429 and r.json()["details"]["actionLimit"] == 1


def test_a_job_fault_survives_a_429(emulator, api):
    emulator.config(parallel_inferences=1, timing=SLOW)
    first = api.post("/generate/controlnet", json=body()).json()["job"]["jobId"]
    emulator.fault(target="POST /v1/generate/*", kind="stuck_job")
    assert api.post("/generate/controlnet", json=body(seed=2)).status_code == 429
    assert len(emulator.faults()) == 1  # still pending for the next accepted job
    api.post(f"/jobs/{first}/action", json={"action": "cancel"})
    assert api.post("/generate/controlnet", json=body(seed=2)).status_code == 200
    assert emulator.faults() == []


def test_team_limits_route(emulator, api):
    emulator.config(parallel_inferences=3, parallel_custom_jobs=2)
    for team in ("me", "team_emulator"):
        r = api.get(f"/teams/{team}/limits")
        assert r.status_code == 200, r.text
        limits = r.json()["limits"]
        assert limits["parallelInferences"] == 3 and limits["parallelCustomJobs"] == 2
        assert r.json()["teamId"] == "team_emulator"
    assert api.get("/teams/team_other/limits").status_code == 404
    emulator.config(team_limits_readable=False)
    r = api.get("/teams/me/limits")
    assert r.status_code == 403 and "protected" in r.json()["reason"]
    with httpx.Client(base_url=emulator.url, trust_env=False) as anonymous:
        assert anonymous.get("/teams/me/limits").status_code == 401


def test_config_rejects_bad_limit_and_profile_values():
    config = EmulatorConfig()
    for bad in ({"parallel_inferences": 0}, {"progress_profile": "wobbly"}, {"clock_scale": 0}, {"team_id": "a/b"}):
        with pytest.raises(ValueError):
            config.updated(bad)
    assert config.updated({"clock_scale": 4}).job_timing == config.timing.scaled(0.25)


@pytest.mark.parametrize("profile", timeline.PROFILES)
def test_profiles_are_monotonic_pure_functions_from_0_to_1(profile):
    xs = [i / 200 for i in range(201)]
    values = [timeline.profile_progress(x, profile, "job_abc") for x in xs]
    assert values == [timeline.profile_progress(x, profile, "job_abc") for x in xs]  # same input, same answer
    assert values[0] == 0.0 and values[-1] == 1.0
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))


def test_jumpy_progress_moves_in_few_irregular_steps_and_stalled_waits():
    values = {timeline.profile_progress(i / 1000, timeline.JUMPY, "job_x") for i in range(1000)}
    assert 2 <= len(values) <= timeline.JUMPY_STEPS + 1
    assert values != {timeline.profile_progress(i / 1000, timeline.JUMPY, "job_y") for i in range(1000)}
    assert timeline.profile_progress(0.6, timeline.STALLED_THEN_FAST) == 0.0
    assert timeline.profile_progress(0.85, timeline.STALLED_THEN_FAST) == pytest.approx(0.5)


def test_snapshot_applies_the_profile_to_the_running_phase_only():
    timing = Timing(queued=1.0, warming_up=1.0, running=10.0, finalizing=1.0)
    stalled = timeline.snapshot(2.0 + 6.0, timing, profile=timeline.STALLED_THEN_FAST)
    assert stalled.status == "in-progress" and stalled.progress == 0.0
    late = timeline.snapshot(2.0 + 8.5, timing, profile=timeline.STALLED_THEN_FAST)
    assert late.progress == pytest.approx(0.5)
    assert timeline.snapshot(12.5, timing, profile=timeline.JUMPY, seed="j").status == "finalizing"
    assert timeline.snapshot(13.0, timing, profile=timeline.JUMPY, seed="j").status == "success"
    assert timeline.end_offset(timing) == 13.0 and timeline.end_offset(timing, timeline.STICK) is None


def test_jobs_follow_the_configured_profile_and_clock_scale(emulator, api):
    emulator.config(progress_profile="stalled-then-fast", clock_scale=1000.0, timing={"running": 60.0})
    job_id = api.post("/generate/controlnet", json=body()).json()["job"]["jobId"]
    deadline = time.monotonic() + 5
    while (job := api.get(f"/jobs/{job_id}").json()["job"])["status"] != "success":  # 60 s of job time in 0.06 s
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert job["progress"] == 1.0
    assert httpx.get(emulator.origin + "/_emulator/config", trust_env=False).json()["progress_profile"] == (
        "stalled-then-fast"
    )
