"""Emulator faults for the paid-request audit: answers spoiled after the job was created, a server
that ignores ``createdAfter``, and a server clock that differs from ours."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

SUBMIT = "POST /v1/generate/*"
PAID_ONLY = {"dryRun": None}


def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "prompt": "a lighthouse",
        "modelId": "flux.1-dev",
        "modality": "canny",
        "controlImageId": "asset_demo_canny",
        "numSamples": 1,
        "numInferenceSteps": 28,
        "width": 256,
        "height": 256,
        "seed": 77,
    }
    b.update(over)
    return b


@pytest.fixture
def api(emulator):
    with emulator.api() as client:
        yield client


def jobs(api: httpx.Client, **params: str) -> list[dict[str, Any]]:
    r = api.get("/jobs", params=params)
    assert r.status_code == 200, r.text
    return r.json()["jobs"]


@pytest.mark.parametrize("status", [503, 429, 502])
def test_status_after_accept_creates_the_job_then_answers_the_status(emulator, api, status):
    emulator.fault(target=SUBMIT, kind="status_after_accept", status=status, retry_after=1, query=PAID_ONLY)
    r = api.post("/generate/controlnet", json=body())
    assert r.status_code == status
    assert "jobId" not in r.text
    [entry] = emulator.requests("POST", "/v1/generate/*")
    assert entry["fault"] == "status_after_accept" and entry["processed_status"] == 200
    assert entry["job_id"] and r.headers["Retry-After"] == "1"
    [job] = jobs(api)
    assert job["jobId"] == entry["job_id"]
    # the fault is spent: the next submit is answered normally
    assert api.post("/generate/controlnet", json=body()).status_code == 200


def test_status_after_accept_with_a_raw_html_body(emulator, api):
    emulator.fault(
        target=SUBMIT, kind="status_after_accept", status=503, raw="<html>Service Unavailable</html>", query=PAID_ONLY
    )
    r = api.post("/generate/controlnet", json=body())
    assert r.status_code == 503 and r.text == "<html>Service Unavailable</html>"
    assert r.headers["content-type"].startswith("text/html")
    assert len(jobs(api)) == 1


def test_status_after_accept_on_a_refused_request_creates_nothing(emulator, api):
    emulator.fault(target=SUBMIT, kind="status_after_accept", status=503)
    r = api.post("/generate/controlnet", json=body(modelId="no-such-model"))
    assert r.status_code == 503
    [entry] = emulator.requests("POST", "/v1/generate/*")
    assert entry["processed_status"] == 404
    assert jobs(api) == []


@pytest.mark.parametrize(
    "mode, check",
    [
        ("malformed_json", lambda r: pytest.raises(ValueError, r.json)),
        ("html", lambda r: r.headers["content-type"].startswith("text/html") and "<html>" in r.text),
        ("empty", lambda r: r.content == b""),
        ("not_object", lambda r: r.json() == ["ok"]),
        ("no_job_id", lambda r: "jobId" not in r.json()["job"] and r.json()["job"]["status"] == "queued"),
        ("bad_job_id", lambda r: r.json()["job"]["jobId"].startswith("job id ../")),
        ("no_job", lambda r: "job" not in r.json() and "creativeUnitsCost" in r.json()),
    ],
)
def test_broken_body_after_the_job_was_created(emulator, api, mode, check):
    emulator.fault(target=SUBMIT, kind="broken_body", mode=mode, query=PAID_ONLY)
    r = api.post("/generate/controlnet", json=body())
    assert r.status_code == 200
    result = check(r)
    if isinstance(result, bool):
        assert result
    [entry] = emulator.requests("POST", "/v1/generate/*")
    assert entry["fault"] == "broken_body" and entry["processed_status"] == 200
    [job] = jobs(api)
    assert job["jobId"] == entry["job_id"]


def test_broken_body_can_use_another_2xx_status_and_spares_errors(emulator, api):
    emulator.fault(target=SUBMIT, kind="broken_body", mode="html", status=202, count=2)
    assert api.post("/generate/controlnet", json=body()).status_code == 202
    r = api.post("/generate/controlnet", json=body(width=7))  # refused: the real 400 goes out
    assert r.status_code == 400 and "width" in r.json()["reason"]


def test_broken_body_on_an_upload(emulator, api):
    from helpers import data_url, make_png

    emulator.fault(target="POST /v1/assets", kind="broken_body", mode="no_job")
    r = api.post("/assets", json={"name": "m.png", "image": data_url(make_png(16, 16))})
    assert r.status_code == 200 and "asset" not in r.json()
    [entry] = emulator.requests("POST", "/v1/assets")
    assert entry["processed_status"] == 200


@pytest.mark.parametrize(
    "fault, message",
    [
        ({"kind": "broken_body"}, "mode"),
        ({"kind": "broken_body", "mode": "sideways"}, "mode"),
        ({"kind": "broken_body", "mode": "html", "status": 503}, "2xx"),
        ({"kind": "status_after_accept"}, "status"),
        ({"kind": "status_after_accept", "status": 503, "body": {}, "raw": "x"}, "not both"),
        ({"kind": "status_after_accept", "status": 503, "raw": 5}, "raw"),
    ],
)
def test_bad_after_accept_faults_are_refused(emulator, fault, message):
    r = httpx.post(emulator.origin + "/_emulator/faults", json={"target": SUBMIT, **fault}, trust_env=False)
    assert r.status_code == 400 and message in r.json()["reason"]
    assert emulator.faults() == []


def test_ignore_created_after_lists_older_jobs(emulator, api):
    first = api.post("/generate/controlnet", json=body()).json()["job"]
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert jobs(api, createdAfter=later) == []
    emulator.config(ignore_created_after=True)
    listed = jobs(api, createdAfter=later)
    assert [j["jobId"] for j in listed] == [first["jobId"]]
    emulator.reset()
    assert jobs(api, createdAfter=later) == []


def test_clock_skew_moves_the_date_header_and_job_dates(emulator, api):
    emulator.config(clock_skew=3600)
    r = api.post("/generate/controlnet", json=body())
    server_now = parsedate_to_datetime(r.headers["Date"])
    local_now = datetime.now(UTC)
    assert 3590 < (server_now - local_now).total_seconds() < 3610
    created = datetime.fromisoformat(r.json()["job"]["createdAt"].replace("Z", "+00:00"))
    assert abs((created - server_now).total_seconds()) < 5
    # createdAfter is read in the server's clock: "since a minute ago, local time" still lists the job
    since = (local_now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert len(jobs(api, createdAfter=since)) == 1
    since_server = (server_now + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert jobs(api, createdAfter=since_server) == []


def test_new_config_keys_are_checked(emulator):
    for bad in ({"clock_skew": "soon"}, {"clock_skew": 1e9}, {"ignore_created_after": 1}):
        r = httpx.post(emulator.origin + "/_emulator/config", json=bad, trust_env=False)
        assert r.status_code == 400, bad
    shown = httpx.get(emulator.origin + "/_emulator/config", trust_env=False).json()
    assert shown["clock_skew"] == 0 and shown["ignore_created_after"] is False
    assert json.dumps(shown)


def test_a_fault_with_a_probability_hits_only_some_requests(emulator, api):
    emulator.fault(target="GET /v1/models/*", kind="status", status=503, count=1000, probability=0.3)
    statuses = [api.get("/models/flux.1-dev").status_code for _ in range(60)]
    hits = statuses.count(503)
    assert set(statuses) <= {200, 503} and 3 <= hits <= 40
    [pending] = emulator.faults()
    assert pending["probability"] == 0.3 and pending["count"] == 1000 - hits
    for bad in (0, 1.5, "often", True):
        r = httpx.post(
            emulator.origin + "/_emulator/faults",
            json={"target": SUBMIT, "kind": "slow", "delay": 0, "probability": bad},
            trust_env=False,
        )
        assert r.status_code == 400 and "probability" in r.json()["reason"]


async def test_a_trickling_file_host_ends_with_a_clear_error_at_the_total_deadline(emulator, settings, monkeypatch):
    from helpers import fast_client

    from scenario_api.errors import DownloadError

    monkeypatch.setenv("SCENARIO_DOWNLOAD_TIMEOUT", "0.6")
    emulator.fault(target="GET /cdn/*", kind="trickle_download", delay=0.2, count=5)
    async with fast_client(settings, download_attempts=2) as client:
        with pytest.raises(DownloadError) as info:
            await client.download_asset("asset_demo_pose")  # a ~2 KB map sent 256 bytes every 0.2 s
    assert "0.6 s" in str(info.value) and "SCENARIO_DOWNLOAD_TIMEOUT" in str(info.value)
    [entry] = emulator.requests("GET", "/cdn/*")  # not retried: a fresh URL would trickle just the same
    assert entry["fault"] == "trickle_download" and entry["auth_header_present"] is False


def test_the_download_deadline_setting():
    from scenario_api.downloads import download_deadline

    assert download_deadline({}) == 120
    assert download_deadline({"SCENARIO_DOWNLOAD_TIMEOUT": "7.5"}) == 7.5
    for bad in ("0", "-1", "nan", "inf", "soon"):
        assert download_deadline({"SCENARIO_DOWNLOAD_TIMEOUT": bad}) == 120
