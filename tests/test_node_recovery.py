"""Recovery and assets: Poll Job + Fetch Asset recover a job; Upload Asset round-trips pixels."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from helpers import make_array, make_png
from pack_loader import image_tensor, submodule
from PIL import Image

from scenario_api import ControlNetRequest, ScenarioClient

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env


def start_job(emulator, **body) -> str:
    payload = {
        "prompt": "recover me",
        "modelId": "flux.1-dev",
        "modality": "canny",
        "controlImageId": "asset_demo_canny",
        "numSamples": 2,
        "seed": 77,
    }
    payload.update(body)
    with emulator.api() as api:
        resp = api.post("/generate/controlnet", json=payload)
        assert resp.status_code == 200, resp.text
        return resp.json()["job"]["jobId"]


async def test_poll_and_fetch_recover_a_job_started_by_the_client(node_env, comfy, pack, settings):
    async with ScenarioClient(settings) as client:
        sub = await client.submit(
            ControlNetRequest(prompt="started elsewhere", control_image_id="asset_demo_canny", num_samples=2, seed=4)
        )
    poll = pack.NODE_CLASS_MAPPINGS["ScenarioPollJob"]()
    asset_ids, status = await poll.poll(sub.job_id, 30, unique_id="11")
    assert status == "success"
    ids = asset_ids.split(",")
    assert len(ids) == 2 and all(i.startswith("asset_") for i in ids)
    assert any(sub.job_id in t for _, t in comfy.texts)

    images, masks = await pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]().fetch(asset_ids, unique_id="12")
    assert tuple(images.shape) == (2, 512, 512, 3) and tuple(masks.shape) == (2, 512, 512)
    async with ScenarioClient(settings) as client:
        raw = await client.download_asset(ids[1])
    expected = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), dtype=np.float32) / 255.0
    assert torch.allclose(images[1], torch.from_numpy(expected))
    # downloads went to the file route without credentials
    files = node_env.requests("GET", "/cdn/*")
    assert files and all(f["auth_header_present"] is False for f in files)
    assert not [
        e for e in node_env.requests("POST", "/v1/generate/*") if e["body"].get("prompt") != "started elsewhere"
    ]


async def test_poll_timeout_returns_current_status_without_error(node_env, comfy, pack):
    node_env.fault(target="POST /v1/generate/*", kind="stuck_job")
    job_id = start_job(node_env)
    poll = pack.NODE_CLASS_MAPPINGS["ScenarioPollJob"]()
    asset_ids, status = await poll.poll(job_id, 0)
    assert asset_ids == "" and status in ("queued", "warming-up", "in-progress")
    asset_ids, status = await poll.poll(job_id, 1)
    assert asset_ids == "" and status == "in-progress"
    assert node_env.requests("POST", "/v1/jobs/*/action") == []  # never cancelled by polling

    errors = submodule("scenario_api.errors")
    with pytest.raises(errors.ValidationError) as info:
        await pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]().fetch(asset_ids)
    assert str(info.value).startswith("Scenario: ") and "queue the workflow again" in str(info.value)


async def test_poll_failed_job_raises_reason_and_hint(node_env, comfy, pack):
    errors = submodule("scenario_api.errors")
    node_env.fault(target="POST /v1/generate/*", kind="job_failure", error="Model overloaded", hint="Try later")
    job_id = start_job(node_env)
    with pytest.raises(errors.JobFailedError) as info:
        await pack.NODE_CLASS_MAPPINGS["ScenarioPollJob"]().poll(job_id, 30)
    text = str(info.value)
    assert text.startswith("Scenario: ") and job_id in text and "Model overloaded" in text and "Try later" in text


async def test_poll_several_jobs_in_order(node_env, comfy, pack):
    first, second = start_job(node_env, numSamples=1), start_job(node_env, numSamples=2, seed=5)
    asset_ids, status = await pack.NODE_CLASS_MAPPINGS["ScenarioPollJob"]().poll(f"{first}\n{second}", 30)
    assert status == "success,success"
    with node_env.api() as api:
        expect = [a for j in (first, second) for a in api.get(f"/jobs/{j}").json()["job"]["metadata"]["assetIds"]]
    assert asset_ids.split(",") == expect


async def test_poll_is_changed_rechecks_until_finished(node_env, comfy, pack):
    cls = pack.NODE_CLASS_MAPPINGS["ScenarioPollJob"]
    job_id = start_job(node_env)
    a, b = cls.IS_CHANGED(job_id=job_id, timeout_seconds=5), cls.IS_CHANGED(job_id=job_id, timeout_seconds=5)
    assert a != b and isinstance(a, str)  # a changing value, never NaN (NaN would re-run forever)
    await cls().poll(job_id, 30)
    c, d = cls.IS_CHANGED(job_id=job_id, unique_id="1"), cls.IS_CHANGED(job_id=job_id, unique_id="1")
    assert c == d and c != a  # finished: ComfyUI may reuse the cached result


async def test_upload_then_fetch_round_trips_pixels(node_env, comfy, pack):
    gray = make_array(48, 32, "shapes")
    rgb = np.stack([make_array(48, 32, "gradient"), make_array(48, 32, "checker"), gray], axis=-1)
    batch = image_tensor(gray, rgb)
    upload = pack.NODE_CLASS_MAPPINGS["ScenarioUploadAsset"]()
    (ids,) = await upload.upload(batch, "my-map", unique_id="2")
    assert len(ids.split(",")) == 2
    names = [e["body"]["name"] for e in node_env.requests("POST", "/v1/assets")]
    assert sorted(names) == ["my-map-1", "my-map-2"]  # uploads run concurrently: any order, one per item
    images, masks = await pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]().fetch(ids)
    assert torch.equal(images, batch)  # exact: uint8 -> PNG -> uint8
    assert float(masks.min()) == 1.0

    (again,) = await upload.upload(batch, "my-map")
    assert again == ids and len(node_env.requests("POST", "/v1/assets")) == 2  # cached, no new upload


async def test_uploaded_id_drives_a_generation(node_env, comfy, pack):
    (asset_id,) = await pack.NODE_CLASS_MAPPINGS["ScenarioUploadAsset"]().upload(
        image_tensor(make_array(96, 64, "edges")), "comfyui-control"
    )
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    images, _, _ = await node.generate(
        prompt="from an uploaded map",
        model_id="flux.1-dev",
        modality="canny",
        modality_strength=0.8,
        num_samples=1,
        guidance=3.5,
        num_inference_steps=20,
        width=0,
        height=0,
        seed=2,
        control_image_id=asset_id,
    )
    assert tuple(images.shape) == (1, 64, 96, 3)  # size from the asset's metadata
    [submit] = [e for e in node_env.requests("POST", "/v1/generate/*")]
    assert submit["body"]["controlImageId"] == asset_id
    assert len(node_env.requests("POST", "/v1/assets")) == 1


async def test_fetch_alpha_becomes_the_mask(node_env, comfy, pack):
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = np.tile(np.linspace(0, 255, 16).astype(np.uint8), (16, 1))
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    with node_env.api() as api:
        url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        asset_id = api.post("/assets", json={"name": "alpha", "image": url}).json()["asset"]["id"]
    images, masks = await pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]().fetch(f'["{asset_id}"]')
    assert torch.allclose(masks[0], torch.from_numpy(rgba[..., 3].astype(np.float32) / 255.0))
    assert float(images[0, :, :, 0].mean()) == pytest.approx(200 / 255, abs=1e-6)


async def test_fetch_mixed_sizes_and_id_forms(node_env, comfy, pack):
    with node_env.api() as api:
        ids = []
        for w, h in ((32, 16), (16, 48)):
            url = "data:image/png;base64," + base64.b64encode(make_png(w, h, "solid")).decode()
            ids.append(api.post("/assets", json={"name": "m", "image": url}).json()["asset"]["id"])
    images, masks = await pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]().fetch(" \n".join(ids))
    assert tuple(images.shape) == (2, 48, 32, 3)
    # first (32x16) sits in rows 16..31; the rest is padding with mask 0
    assert float(masks[0, 16:32].min()) == 1.0 and float(masks[0, :16].max()) == 0.0
    assert float(masks[1, :, 8:24].min()) == 1.0 and float(masks[1, :, :8].max()) == 0.0
