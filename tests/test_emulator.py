"""The emulator over real loopback HTTP: routes, job clock, images, faults, controls, CLI."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import numpy as np
import pytest
from helpers import data_url, decode_png, make_array, make_jpeg, make_png

from scenario_api.emulator import DEMO_KEY, DEMO_SECRET, Emulator, Timing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "prompt": "a red fox",
        "modelId": "flux.1-dev",
        "modality": "canny",
        "controlImageId": "asset_demo_canny",
        "numSamples": 1,
        "guidance": 3.5,
        "numInferenceSteps": 28,
        "width": 256,
        "height": 256,
        "seed": 1234,
    }
    b.update(over)
    return {k: v for k, v in b.items() if v is not None}


def submit(api: httpx.Client, endpoint: str = "controlnet", **over: Any) -> dict[str, Any]:
    r = api.post(f"/generate/{endpoint}", json=body(**over))
    assert r.status_code == 200, r.text
    return r.json()


def wait(api: httpx.Client, job_id: str, timeout: float = 4.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/jobs/{job_id}").json()["job"]
        if job["status"] in ("success", "failure", "canceled") or time.monotonic() > deadline:
            return job
        time.sleep(0.02)


def outputs(api: httpx.Client, job: dict[str, Any]) -> list[bytes]:
    out = []
    for asset_id in job["metadata"]["assetIds"]:
        url = api.get(f"/assets/{asset_id}").json()["asset"]["url"]
        r = httpx.get(url, trust_env=False)
        assert r.status_code == 200
        out.append(r.content)
    return out


def generate(api: httpx.Client, endpoint: str = "controlnet", **over: Any) -> list[bytes]:
    job = wait(api, submit(api, endpoint, **over)["job"]["jobId"])
    assert job["status"] == "success", job
    return outputs(api, job)


@pytest.fixture
def api(emulator):
    with emulator.api() as client:
        yield client


# --------------------------------------------------------------------------- auth


def test_auth_required_and_secret_never_logged(emulator, api):
    anon = httpx.get(emulator.url + "/models", trust_env=False)
    assert anon.status_code == 401 and anon.json() == {"reason": "Unauthorized"}
    wrong = httpx.get(emulator.url + "/models", auth=(emulator.key, "nope"), trust_env=False)
    assert wrong.status_code == 401
    assert api.get("/models").status_code == 200

    entries = emulator.requests("GET", "/v1/models")
    assert [(e["auth_header_present"], e["auth_ok"], e["status"]) for e in entries] == [
        (False, False, 401),
        (True, False, 401),
        (True, True, 200),
    ]
    text = json.dumps(emulator.log())
    token = base64.b64encode(f"{emulator.key}:{emulator.secret}".encode()).decode()
    assert emulator.secret not in text and token not in text


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "over, field",
    [
        ({"numSamples": 0}, "numSamples"),
        ({"modality": "canny,depth"}, "modality"),
        ({"modality": "seg"}, "modality"),
        ({"width": 100}, "width"),
        ({"guidance": 11}, "guidance"),
        ({"prompt": ""}, "prompt"),
        ({"controlImageId": None}, "controlImage"),
    ],
)
def test_validation_uses_spec_and_names_the_field(api, emulator, over, field):
    r = api.post("/generate/controlnet", json=body(**over))
    assert r.status_code == 400
    assert r.json()["reason"].startswith(f"Invalid {field}")
    assert api.get("/jobs").json()["jobs"] == []


def test_lenient_inputs_are_accepted(api):
    # what real clients send: the map as `image`, the seed as a string, an alias name, stray keys
    job = submit(
        api,
        modality="openpose",
        controlImageId=None,
        image="asset_demo_pose",
        seed="42",
        type="controlnet",
        dryRun=True,
    )["job"]
    echo = job["metadata"]["input"]
    assert echo["modality"] == "pose" and echo["seed"] == 42 and echo["controlImage"] == "asset_demo_pose"
    job = submit(
        api, modelId="stable-diffusion-v1-5", scheduler="EulerAncestralDiscrete", modality="canny:0.5,depth:0.4"
    )["job"]
    assert job["metadata"]["input"]["scheduler"] == "EulerAncestralDiscreteScheduler"


def test_unknown_and_custom_models_and_missing_asset(api):
    r = api.post("/generate/controlnet", json=body(modelId="no-such-model"))
    assert r.status_code == 404 and r.json()["reason"] == "Model no-such-model not found"
    r = api.post("/generate/controlnet", json=body(modelId="model_bfl-flux-1-dev"))
    assert r.status_code == 400 and "/generate/custom/" in r.json()["reason"]
    r = api.post("/generate/controlnet", json=body(controlImageId="asset_missing"))
    assert r.status_code == 404 and r.json()["reason"] == "Asset asset_missing not found"
    r = api.post("/generate/controlnet", json=body(controlImageId=None, controlImage="data:image/png;base64,AAAA"))
    assert r.status_code == 400 and "controlImage" in r.json()["reason"]
    assert api.get("/jobs").json()["jobs"] == []


# --------------------------------------------------------------------------- dry run, credits


def test_dry_run_quotes_269_and_creates_no_job(api, emulator):
    r = api.post(
        "/generate/controlnet", params={"dryRun": "true"}, json=body(width=1024, height=1024, numInferenceSteps=28)
    )
    assert r.status_code == 269
    quote = r.json()
    assert quote["creativeUnitsCost"] == 5.0 and quote["creativeUnitsDiscount"] == 0 and quote["costDetails"]
    two = api.post(
        "/generate/controlnet",
        params={"dryRun": "true"},
        json=body(width=1024, height=1024, numInferenceSteps=28, numSamples=2),
    ).json()
    assert two["creativeUnitsCost"] == 10.0
    assert api.get("/jobs").json()["jobs"] == []
    assert emulator.requests("POST", "/v1/generate/*")[0]["query"] == {"dryRun": "true"}


def test_insufficient_credits_402_and_balance_deducted(api, emulator):
    emulator.config(credits=6)
    first = submit(api, width=1024, height=1024, numInferenceSteps=28)
    assert first["creativeUnitsCost"] == 5.0 and first["job"]["billing"]["cuCost"] == 5.0
    r = api.post("/generate/controlnet", json=body(width=1024, height=1024, numInferenceSteps=28))
    assert r.status_code == 402 and "creative units" in r.json()["reason"]
    assert len(api.get("/jobs").json()["jobs"]) == 1


# --------------------------------------------------------------------------- jobs


def test_job_moves_through_states_with_rising_progress(api):
    sub = submit(api)
    job = sub["job"]
    assert job["status"] == "queued" and job["progress"] == 0 and job["jobType"] == "controlnet"
    assert job["metadata"]["assetIds"] == [] and job["metadata"]["input"]["type"] == "controlnet"
    seen: list[tuple[str, float]] = []
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        j = api.get(f"/jobs/{job['jobId']}").json()["job"]
        seen.append((j["status"], j["progress"]))
        if j["status"] == "success":
            break
        time.sleep(0.01)
    statuses = [s for s, _ in seen]
    assert statuses[-1] == "success"
    assert statuses.index("in-progress") < statuses.index("success")
    running = [p for s, p in seen if s == "in-progress"]
    assert running == sorted(running) and any(0 < p < 1 for p in running)
    final = api.get(f"/jobs/{job['jobId']}").json()["job"]
    assert [h["status"] for h in final["statusHistory"]] == ["queued", "warming-up", "in-progress", "success"]
    assert final["createdAt"].endswith("Z") and len(final["createdAt"]) == 24
    assert final["updatedAt"] >= final["createdAt"]


def test_num_samples_assets_with_metadata(api):
    job = wait(api, submit(api, numSamples=3, seed=77)["job"]["jobId"])
    ids = job["metadata"]["assetIds"]
    assert len(ids) == 3 and len(set(ids)) == 3
    for index, asset_id in enumerate(ids):
        asset = api.get(f"/assets/{asset_id}").json()["asset"]
        meta = asset["metadata"]
        assert asset["id"] == asset_id and asset["mimeType"] == "image/png" and asset["status"] == "success"
        assert meta["type"] == "inference-controlnet" and meta["parentJobId"] == job["jobId"]
        assert meta["sampleIndex"] == index and meta["seed"] == str(77 + index)
        assert (meta["width"], meta["height"]) == (256, 256)
    images = outputs(api, job)
    assert len({bytes(i) for i in images}) == 3
    assert decode_png(images[0]).shape == (256, 256, 3)


def test_seed_drawn_when_absent(api):
    job = submit(api, seed=None)["job"]
    assert isinstance(job["metadata"]["input"]["seed"], int)


def test_cancel(api):
    job_id = submit(api)["job"]["jobId"]
    r = api.post(f"/jobs/{job_id}/action", json={"action": "cancel"})
    assert r.status_code == 200 and r.json()["job"]["jobId"] == job_id
    job = api.get(f"/jobs/{job_id}").json()["job"]
    assert job["status"] == "canceled" and job["metadata"]["assetIds"] == []
    time.sleep(0.35)  # past the time it would have succeeded
    assert api.get(f"/jobs/{job_id}").json()["job"]["status"] == "canceled"
    again = api.post(f"/jobs/{job_id}/action", json={"action": "cancel"})
    assert again.status_code == 400 and again.json()["reason"] == "Job is already canceled"
    other = api.post(f"/jobs/{submit(api)['job']['jobId']}/action", json={"action": "pause"})
    assert other.status_code == 400
    assert api.post("/jobs/job_missing/action", json={"action": "cancel"}).status_code == 404
    assert api.get("/jobs/job_missing").status_code == 404


def test_jobs_list_created_after_and_pagination(api):
    ids = [submit(api, seed=i)["job"]["jobId"] for i in range(5)]
    listed = api.get("/jobs").json()
    assert [j["jobId"] for j in listed["jobs"]] == ids[::-1] and "nextPaginationToken" not in listed

    pages, token = [], None
    while True:
        params = {"pageSize": 2, **({"paginationToken": token} if token else {})}
        page = api.get("/jobs", params=params).json()
        pages.append([j["jobId"] for j in page["jobs"]])
        token = page.get("nextPaginationToken")
        if not token:
            break
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]

    future = (datetime.now(UTC) + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    past = (datetime.now(UTC) - timedelta(seconds=60)).isoformat()
    assert api.get("/jobs", params={"createdAfter": future}).json()["jobs"] == []
    assert len(api.get("/jobs", params={"createdAfter": past}).json()["jobs"]) == 5
    assert api.get("/jobs", params={"pageSize": 201}).status_code == 400
    assert api.get("/jobs", params={"createdAfter": "yesterday"}).status_code == 400
    assert api.get("/jobs", params={"status": "failure,canceled"}).json()["jobs"] == []
    wait(api, ids[-1])
    assert len(api.get("/jobs", params={"status": "success"}).json()["jobs"]) == 5


def test_short_pages_still_reach_every_job(api, emulator):
    emulator.config(short_pages=True)
    ids = [submit(api, seed=i)["job"]["jobId"] for i in range(3)]
    seen, sizes, token = [], [], None
    for _ in range(20):
        page = api.get("/jobs", params={"pageSize": 50, **({"paginationToken": token} if token else {})}).json()
        sizes.append(len(page["jobs"]))
        seen += [j["jobId"] for j in page["jobs"]]
        token = page.get("nextPaginationToken")
        if not token:
            break
    assert seen == ids[::-1]
    assert 0 in sizes and max(sizes) == 1


def test_project_id_is_accepted_and_logged(api, emulator):
    job = api.post("/generate/controlnet", params={"projectId": "proj_1"}, json=body()).json()["job"]
    assert job["ownerId"] == "proj_1"
    assert emulator.requests("POST", "/v1/generate/controlnet")[0]["query"] == {"projectId": "proj_1"}


def test_concurrent_submits_create_distinct_jobs(api, emulator):
    async def burst() -> list[str]:
        async with httpx.AsyncClient(
            base_url=emulator.url, auth=(emulator.key, emulator.secret), trust_env=False, timeout=10
        ) as client:
            replies = await asyncio.gather(*[client.post("/generate/controlnet", json=body(seed=i)) for i in range(40)])
        return [r.json()["job"]["jobId"] for r in replies]

    ids = asyncio.run(burst())
    assert len(set(ids)) == 40
    assert len(api.get("/jobs").json()["jobs"]) == 40
    assert len(emulator.requests("POST", "/v1/generate/controlnet")) == 40


# --------------------------------------------------------------------------- images


def test_same_request_and_seed_give_identical_bytes(api):
    a = generate(api, seed=5)
    b = generate(api, seed=5)
    assert a == b


@pytest.mark.parametrize("change", [{"seed": 6}, {"prompt": "a blue fox"}, {"modality": "depth"}])
def test_any_change_changes_pixels(api, change):
    base = decode_png(generate(api, seed=5)[0]).astype(int)
    other = decode_png(generate(api, **{"seed": 5, **change})[0]).astype(int)
    assert np.abs(base - other).mean() > 1


def test_control_map_shapes_output(api):
    gray = make_array(128, 96, "shapes")
    png = make_png(128, 96, "shapes")
    out = decode_png(generate(api, controlImageId=None, controlImage=data_url(png), width=128, height=96)[0])
    lum = out.astype(float).mean(axis=2)
    corr = np.corrcoef(lum.ravel(), gray.astype(float).ravel())[0, 1]
    assert corr > 0.8


def test_url_map_renders_from_neutral_gray(api):
    out = decode_png(generate(api, controlImageId=None, controlImage="https://example.com/map.png")[0])
    lum = out.astype(float).mean(axis=2)
    assert lum.std() < 20  # nothing but the faint texture: no structure from a map


def test_img2img_blends_init_image(api):
    init = make_png(256, 256, "checker", mode="RGB")
    common = dict(image=data_url(init), controlImageId="asset_demo_pose")
    job = wait(api, submit(api, "controlnet-img2img", strength=0.01, **common)["job"]["jobId"])
    assert job["metadata"]["input"]["type"] == "controlnet-img2img"
    near = decode_png(outputs(api, job)[0]).astype(float)
    far = decode_png(generate(api, "controlnet-img2img", strength=1.0, **common)[0]).astype(float)
    checker = decode_png(init).astype(float)
    assert np.abs(near - checker).mean() < 8 < np.abs(far - checker).mean()
    asset = api.get(f"/assets/{job['metadata']['assetIds'][0]}").json()["asset"]
    assert asset["metadata"]["type"] == "inference-controlnet-img2img"
    assert api.post("/generate/controlnet-img2img", json=body()).status_code == 400  # no init image


def test_mixed_sizes(api, emulator):
    emulator.config(mixed_sizes=True)
    images = generate(api, numSamples=2, width=320, height=256)
    assert decode_png(images[0]).shape[:2] == (256, 320)
    assert decode_png(images[1]).shape[:2] == (320, 256)


# --------------------------------------------------------------------------- assets and files


def test_file_route_needs_no_auth_and_logs_header_presence(api, emulator):
    url = api.get("/assets/asset_demo_canny").json()["asset"]["url"]
    assert url.startswith(emulator.origin + "/cdn/assets/asset_demo_canny.png?")
    r = httpx.get(url, trust_env=False)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert int(r.headers["content-length"]) == len(r.content)
    assert decode_png(r.content).shape == (512, 512, 3)
    httpx.get(url, trust_env=False, auth=("someone", "else"))
    files = emulator.requests("GET", "/cdn/*")
    assert [(e["auth_header_present"], e["auth_ok"], e["status"]) for e in files] == [
        (False, None, 200),
        (True, None, 200),
    ]


def test_signed_url_credentials_never_reach_the_request_log_or_debug_lines(api, emulator, caplog):
    caplog.set_level(logging.DEBUG, logger="scenario_api.emulator")
    url = api.get("/assets/asset_demo_canny").json()["asset"]["url"]
    query = dict(parse_qsl(urlsplit(url).query))
    assert httpx.get(url, trust_env=False).status_code == 200
    (entry,) = emulator.requests("GET", "/cdn/*")
    assert entry["query"] == {
        "Expires": query["Expires"],
        "Policy": "<redacted>",
        "Signature": "<redacted>",
        "Key-Pair-Id": "<redacted>",
    }
    lines = [r.getMessage() for r in caplog.records if r.name == "scenario_api.emulator"]
    line = next(text for text in lines if "/cdn/assets/" in text)
    assert f"Expires={query['Expires']}" in line and "Signature=<redacted>" in line
    assert not any(query["Signature"] in text or query["Policy"] in text for text in lines)


def test_expired_and_tampered_urls_are_refused(api, emulator):
    good = api.get("/assets/asset_demo_pose").json()["asset"]["url"]
    assert httpx.get(good.replace("Signature=", "Signature=x"), trust_env=False).status_code == 403
    emulator.config(url_ttl=-5)
    expired = api.get("/assets/asset_demo_pose").json()["asset"]["url"]
    r = httpx.get(expired, trust_env=False)
    assert r.status_code == 403 and r.json()["reason"] == "Request has expired"


def test_upload_asset_and_use_it_as_map(api):
    png = make_png(96, 64, "edges")
    up = api.post("/assets", json={"name": "map.png", "image": data_url(png)})
    assert up.status_code == 200
    asset = up.json()["asset"]
    assert asset["id"].startswith("asset_") and asset["metadata"]["type"] == "uploaded"
    assert (asset["metadata"]["width"], asset["metadata"]["height"]) == (96, 64)
    assert httpx.get(asset["url"], trust_env=False).content == png
    bare = api.post("/assets", json={"name": "photo.jpg", "image": base64.b64encode(make_jpeg()).decode()})
    assert bare.status_code == 200 and bare.json()["asset"]["mimeType"] == "image/png"
    assert generate(api, controlImageId=asset["id"], width=96, height=64)

    bad = api.post("/assets", json={"name": "x", "image": "data:image/png;base64,bm90IGFuIGltYWdl"})
    assert bad.status_code == 400 and bad.json()["reason"].startswith("Invalid image")
    nameless = api.post("/assets", json={"image": data_url(png)})
    assert nameless.status_code == 400 and nameless.json()["reason"].startswith("Invalid name")
    assert api.get("/assets/asset_nothing").status_code == 404


def test_models(api):
    # issue 8: like Scenario, GET /models lists the account's private models unless privacy=public
    rows = api.get("/models", params={"privacy": "public"}).json()["models"]
    ids = {m["id"] for m in rows}
    assert {
        "flux.1-dev",
        "flux.1-schnell",
        "stable-diffusion-xl-base-1.0",
        "stable-diffusion-v1-5",
        "model_bfl-flux-1-dev",
        "model_demo-flux-lora",
    } <= ids
    assert all("inputs" not in m for m in rows)
    model = api.get("/models/stable-diffusion-xl-base-1.0").json()["model"]
    assert model["type"] == "sd-xl" and model["status"] == "trained" and model["custom"] is False
    assert api.get("/models/model_bfl-flux-1-dev").json()["model"]["custom"] is True
    missing = api.get("/models/nope")
    assert missing.status_code == 404 and missing.json()["reason"] == "Model nope not found"
    # the LoRA runs on the legacy endpoint with Flux rules
    assert submit(api, modelId="model_demo-flux-lora")["job"]["status"] == "queued"


# --------------------------------------------------------------------------- faults


def test_fault_status_429_with_retry_after(api, emulator):
    emulator.fault(target="POST /v1/generate/*", kind="status", status=429, retry_after=2)
    r = api.post("/generate/controlnet", json=body())
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert r.json() == {
        "reason": "Too many requests",
        "remainingSeconds": 2,
        "details": {"actionName": "generate", "actionLimit": 2},
    }
    assert api.get("/jobs").json()["jobs"] == []
    assert api.post("/generate/controlnet", json=body()).status_code == 200  # count 1: spent
    assert [e["status"] for e in emulator.requests("POST", "/v1/generate/*")] == [429, 200]
    assert emulator.faults() == []


def test_fault_status_count_body_and_query_filter(api, emulator):
    emulator.fault(target="GET /v1/jobs/*", kind="status", status=503, count=2, body={"reason": "busy"})
    emulator.fault(target="POST /v1/generate/*", kind="status", status=500, query={"dryRun": None})
    quote = api.post("/generate/controlnet", params={"dryRun": "true"}, json=body())
    assert quote.status_code == 269  # the dry run does not match {"dryRun": null}
    paid = api.post("/generate/controlnet", json=body())
    assert paid.status_code == 500 and "injected" in paid.json()["reason"]
    job_id = submit(api)["job"]["jobId"]
    codes = [api.get(f"/jobs/{job_id}").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert api.get(f"/jobs/{job_id}").status_code == 200


def test_fault_disconnect_before_accept_creates_nothing(api, emulator):
    emulator.fault(target="POST /v1/generate/controlnet", kind="disconnect_before_accept")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/generate/controlnet", json=body())
    assert api.get("/jobs").json()["jobs"] == []
    entry = emulator.requests("POST", "/v1/generate/*")[0]
    assert entry["status"] is None and entry["fault"] == "disconnect_before_accept"


def test_fault_disconnect_after_accept_creates_the_job(api, emulator):
    emulator.config(credits=100)
    emulator.fault(target="POST /v1/generate/*", kind="disconnect_after_accept")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/generate/controlnet", json=body(seed=99))
    jobs = api.get("/jobs").json()["jobs"]
    assert len(jobs) == 1 and jobs[0]["metadata"]["input"]["seed"] == 99
    entry = emulator.requests("POST", "/v1/generate/*")[0]
    assert entry["status"] is None and entry["job_id"] == jobs[0]["jobId"]
    assert json.loads(httpx.get(emulator.origin + "/_emulator/state", trust_env=False).text)["balance"] < 100


def test_fault_slow_processes_then_answers_late(api, emulator):
    emulator.fault(target="POST /v1/generate/*", kind="slow", delay=0.6)
    with pytest.raises(httpx.ReadTimeout):
        api.post("/generate/controlnet", json=body(), timeout=0.2)
    assert len(api.get("/jobs").json()["jobs"]) == 1  # processed before the late answer
    emulator.fault(target="GET /v1/models", kind="slow", delay=0.2, process_first=False)
    started = time.monotonic()
    assert api.get("/models").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_fault_job_failure(api, emulator):
    emulator.fault(
        target="POST /v1/generate/*", kind="job_failure", error="NSFW content detected", hint="Change the prompt"
    )
    job = wait(api, submit(api)["job"]["jobId"])
    assert job["status"] == "failure" and job["error"] == "NSFW content detected"
    assert job["metadata"]["error"] == "NSFW content detected" and job["metadata"]["hint"] == "Change the prompt"
    assert job["metadata"]["assetIds"] == []
    default = emulator.fault(target="POST /v1/generate/*", kind="job_failure")
    assert default["added"][0]["kind"] == "job_failure"
    assert wait(api, submit(api)["job"]["jobId"])["error"] == "Generation failed"
    assert wait(api, submit(api)["job"]["jobId"])["status"] == "success"


def test_fault_stuck_job(api, emulator):
    emulator.fault(target="POST /v1/generate/*", kind="stuck_job")
    job_id = submit(api)["job"]["jobId"]
    time.sleep(0.5)  # longer than the whole fast timeline
    job = api.get(f"/jobs/{job_id}").json()["job"]
    assert job["status"] == "in-progress" and job["progress"] == 0.42
    assert api.post(f"/jobs/{job_id}/action", json={"action": "cancel"}).status_code == 200
    assert api.get(f"/jobs/{job_id}").json()["job"]["status"] == "canceled"


def test_fault_expired_url_then_fresh_download_works(api, emulator):
    emulator.fault(target="GET /cdn/*", kind="expired_url")
    url = api.get("/assets/asset_demo_canny").json()["asset"]["url"]
    first = httpx.get(url, trust_env=False)
    assert first.status_code == 403 and first.json()["reason"] == "Request has expired"
    assert httpx.get(url, trust_env=False).status_code == 200


def test_fault_truncated_download(api, emulator):
    emulator.fault(target="GET /cdn/*", kind="truncated_download")
    url = api.get("/assets/asset_demo_depth").json()["asset"]["url"]
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url, trust_env=False)
    full = httpx.get(url, trust_env=False)
    assert full.status_code == 200 and len(full.content) == int(full.headers["content-length"])


def test_bad_faults_and_config_are_refused(emulator):
    http = httpx.Client(base_url=emulator.origin, trust_env=False)
    assert http.post("/_emulator/faults", json={"target": "GET /x", "kind": "explode"}).status_code == 400
    assert http.post("/_emulator/faults", json={"target": "GET /x", "kind": "status"}).status_code == 400
    assert http.post("/_emulator/faults", json={"target": "GET /x", "kind": "slow", "delay": -1}).status_code == 400
    assert http.post("/_emulator/config", json={"colour": "red"}).status_code == 400
    assert http.post("/_emulator/config", json={"timing": {"running": -1}}).status_code == 400
    assert emulator.faults() == []
    http.close()


def test_credits_fault_and_clearing_faults(api, emulator):
    emulator.fault(kind="credits", balance=1)
    assert api.post("/generate/controlnet", json=body(width=1024, height=1024)).status_code == 402
    emulator.fault(target="GET /v1/models", kind="status", status=500, count=3)
    assert len(emulator.faults()) == 1
    emulator.clear_faults()
    assert api.get("/models").status_code == 200


# --------------------------------------------------------------------------- controls


def test_log_summarises_bodies(api, emulator):
    url = data_url(make_png(64, 64))
    api.post("/generate/controlnet", json=body(controlImageId=None, controlImage=url, prompt="p" * 500))
    entry = emulator.requests("POST", "/v1/generate/controlnet")[0]
    assert entry["body"]["controlImage"].startswith(f"<data URL {len(url)} chars sha256:")
    assert len(entry["body"]["prompt"]) < 120
    assert set(entry) >= {"seq", "time", "method", "path", "query", "auth_ok", "auth_header_present", "status", "body"}
    job = api.get("/jobs").json()["jobs"][0]
    assert job["metadata"]["input"]["controlImage"].startswith("<data URL sha256:")
    emulator.clear_log()
    assert emulator.log() == []


def test_timing_config_and_reset(api, emulator):
    emulator.config(timing={"queued": 5})
    job_id = submit(api)["job"]["jobId"]
    time.sleep(0.1)
    assert api.get(f"/jobs/{job_id}").json()["job"]["status"] == "queued"
    emulator.reset()
    assert api.get("/jobs").json()["jobs"] == []
    assert api.get("/assets/asset_demo_pose").status_code == 200  # demo assets survive
    assert wait(api, submit(api)["job"]["jobId"])["status"] == "success"  # fast timing again


def test_finalizing_phase(api, emulator):
    emulator.config(timing={"finalizing": 0.1})
    job = wait(api, submit(api)["job"]["jobId"])
    assert [h["status"] for h in job["statusHistory"]][-2:] == ["finalizing", "success"]


# --------------------------------------------------------------------------- lifecycle and CLI


def test_emulator_object_lifecycle_and_credentials(monkeypatch):
    monkeypatch.delenv("SCENARIO_API_KEY")
    with Emulator(timing=Timing(0, 0, 0)) as emu:
        assert emu.credentials == (DEMO_KEY, DEMO_SECRET)
        assert emu.url == emu.origin + "/v1" and emu.url.startswith("http://127.0.0.1:")
        r = httpx.get(emu.url + "/models", auth=(DEMO_KEY, DEMO_SECRET), trust_env=False)
        assert r.status_code == 200
    emu.stop()  # idempotent
    assert not emu.running
    monkeypatch.setenv("SCENARIO_API_KEY", "env-key")
    env_emu = Emulator()
    assert env_emu.credentials == ("env-key", os.environ["SCENARIO_API_SECRET"])
    assert os.environ["SCENARIO_API_SECRET"] not in repr(env_emu)


def _run_cli(env: dict[str, str]) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenario_api.emulator", "--port", "0", "--queued", "0", "--running", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.readline().strip()
    second = proc.stdout.readline().strip()
    return proc, first, second


def test_cli_prints_url_first_and_serves_demo_credentials():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIO_")}
    proc, url, creds = _run_cli(env)
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert creds.startswith("credentials: demo-key")
        r = httpx.get(url + "/models", auth=(DEMO_KEY, DEMO_SECRET), trust_env=False, timeout=5)
        assert r.status_code == 200 and r.json()["models"]
    finally:
        proc.terminate()
        proc.wait(5)
    assert proc.returncode == 0


def test_cli_never_prints_an_env_secret():
    env = dict(os.environ, SCENARIO_API_KEY="env-key-123", SCENARIO_API_SECRET="very-secret-env-value")
    proc, url, creds = _run_cli(env)
    try:
        assert url.endswith("/v1")
        assert (
            httpx.get(
                url + "/models", auth=("env-key-123", "very-secret-env-value"), trust_env=False, timeout=5
            ).status_code
            == 200
        )
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=5)
    assert "very-secret-env-value" not in creds + out + err
