"""The custom-model path (``POST /generate/custom/{modelId}``) for ControlNet, against the emulator.

By 2026 Flux.1-dev is the custom model ``model_bfl-flux-1-dev``: the client adapts
the legacy request shape to the custom body, uploads data URLs first, and keeps
every paid-request rule (validation before paying, reconciliation, quotes).
"""

from __future__ import annotations

import pytest
from helpers import data_url, fast_client, make_array, make_png
from pack_loader import image_tensor

from scenario_api import ControlNetRequest, ValidationError, declared_inputs, spec
from scenario_api.emulator import models_catalog
from scenario_api.models import Model

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

BFL = "model_bfl-flux-1-dev"
CUSTOM_POST = f"/v1/generate/custom/{BFL}"
MAP = data_url(make_png(64, 64, "edges"))


_client = fast_client


def _request(**changes) -> ControlNetRequest:
    fields = {
        "prompt": "a stone bridge",
        "model_id": BFL,
        "modality": "depth:0.6",
        "control_image_id": "asset_demo_canny",
        "num_samples": 2,
        "width": 256,
        "height": 192,
        "seed": 77,
    }
    fields.update(changes)
    return ControlNetRequest(**fields)


def _paid_posts(emulator) -> list[dict]:
    """Generate and asset POSTs that were not dry runs."""
    return [
        e
        for e in emulator.requests("POST", "/v1/*")
        if e["path"].startswith(("/v1/generate/", "/v1/assets"))
        and str(e.get("query", {}).get("dryRun", "")).lower() != "true"
    ]


async def test_submit_wait_download_on_the_custom_path(emulator, settings):
    async with _client(settings) as client:
        submission = await client.submit(_request())
        job = await client.wait_for_job(submission.job_id)
        images = await client.download_all(job.asset_ids)
    assert job.status == "success" and len(job.asset_ids) == 2 and not submission.adopted
    assert all(img.startswith(b"\x89PNG") for img in images)
    assert job.job_type == "custom" and job.input["type"] == "custom"
    [post] = emulator.requests("POST", "/v1/generate/*")
    assert post["path"] == CUSTOM_POST
    body = post["body"]
    assert body["controlModality"] == "depth" and body["controlStrength"] == pytest.approx(0.6)
    assert body["numOutputs"] == 2 and body["controlImage"] == "asset_demo_canny"
    assert "modality" not in body and "numSamples" not in body and "modelId" not in body
    assert emulator.requests("POST", "/v1/generate/controlnet*") == []


async def test_quote_uses_the_custom_path_with_dry_run(emulator, settings):
    async with _client(settings) as client:
        quote = await client.quote(_request(modality="canny"))
    assert quote.creative_units > 0
    [post] = emulator.requests("POST", "/v1/generate/*")
    assert post["path"] == CUSTOM_POST and post["query"].get("dryRun") == "true" and post["status"] == 269
    assert "controlStrength" not in post["body"]  # a weight-less modality sends no strength
    with emulator.api() as api:
        assert api.get("/jobs").json()["jobs"] == []


@pytest.mark.parametrize(
    "changes, field, phrase",
    [
        ({"modality": "depth,canny"}, "modality", "exactly one modality"),
        ({"num_samples": 5}, "numOutputs", "from 1 to 4"),
        ({"width": 520}, "width", "multiple of 16"),
        ({"guidance": 11}, "guidance", "in [0, 10]"),
        ({"num_inference_steps": 60}, "numInferenceSteps", "from 1 to 50"),
        ({"modality": "seg"}, "modality", "canny, tile"),
    ],
)
async def test_custom_rules_refused_before_any_paid_request(emulator, settings, changes, field, phrase):
    async with _client(settings) as client:
        with pytest.raises(ValidationError) as info:
            await client.submit(_request(control_image_id=None, control_image=MAP, **changes))
    assert info.value.field == field and phrase in str(info.value)
    assert _paid_posts(emulator) == []


async def test_data_url_control_is_uploaded_then_sent_as_an_asset_id(emulator, settings):
    async with _client(settings) as client:
        submission = await client.submit(_request(control_image_id=None, control_image=MAP))
    posts = _paid_posts(emulator)
    assert [p["path"] for p in posts] == ["/v1/assets", CUSTOM_POST]
    assert posts[0]["body"]["image"].startswith("data:image/png") or "data URL" in str(posts[0]["body"]["image"])
    sent = posts[1]["body"]["controlImage"]
    assert spec.ASSET_ID_RE.match(sent) and not sent.startswith("asset_demo")
    assert submission.job.input["controlImage"] == sent
    with emulator.api() as api:
        assert api.get(f"/assets/{sent}").status_code == 200  # the id of the asset just uploaded


async def test_lost_reply_on_the_custom_submit_adopts_the_job(emulator, settings):
    emulator.fault(target="POST /v1/generate/*", kind="disconnect_after_accept")
    async with _client(settings) as client:
        submission = await client.submit(_request())
        job = await client.wait_for_job(submission.job_id)
    posts = emulator.requests("POST", "/v1/generate/*")
    assert len(posts) == 1 and posts[0]["path"] == CUSTOM_POST and posts[0]["status"] is None
    with emulator.api() as api:
        jobs = api.get("/jobs").json()["jobs"]
    assert submission.adopted and [j["jobId"] for j in jobs] == [submission.job_id]
    assert job.status == "success"


async def test_model_without_controlnet_capability_is_refused_on_model_id(emulator, settings):
    async with _client(settings) as client:
        with pytest.raises(ValidationError) as info:
            await client.submit(_request(model_id="model_demo-custom-txt2img"))
    assert info.value.field == "modelId" and "can't do ControlNet" in str(info.value)
    assert _paid_posts(emulator) == []


def test_emulator_refuses_non_custom_models_on_the_custom_path(emulator):
    body = {"prompt": "x", "controlImage": "asset_demo_canny", "controlModality": "canny"}
    with emulator.api() as api:
        r = api.post("/generate/custom/flux.1-dev", json=body)
        assert r.status_code == 400 and r.json()["reason"] == "Custom models only are supported for this endpoint"
        quote = api.post(f"/generate/custom/{BFL}", params={"dryRun": "true"}, json=body)
        assert quote.status_code == 269 and quote.json()["creativeUnitsCost"] > 0
        bad = api.post(f"/generate/custom/{BFL}", json={**body, "numOutputs": 5})
        assert bad.status_code == 400 and "numOutputs" in bad.json()["reason"]
        legacy = api.post(
            "/generate/controlnet",
            json={"prompt": "x", "modelId": BFL, "modality": "canny", "controlImageId": "asset_demo_canny"},
        )
        assert legacy.status_code == 400  # the legacy endpoints still refuse custom models
        assert api.get("/jobs").json()["jobs"] == []
        model = api.get(f"/models/{BFL}").json()["model"]
    assert "controlnet" in model["capabilities"]
    assert {i["name"] for i in model["inputs"]} >= {"controlImage", "controlModality", "numOutputs", "width"}


def test_fit_size_for_the_custom_family():
    w, h = spec.fit_size(203, 117, spec.CUSTOM)
    assert w % 16 == 0 and h % 16 == 0 and (w, h) == (224, 128)  # 128 high, aspect kept
    assert spec.fit_size(4000, 3000, spec.CUSTOM) == (2048, 1536)


async def test_generate_node_runs_on_the_custom_model(node_env, comfy, pack):
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    control = image_tensor(make_array(203, 117, "edges"))
    images, job_id, asset_ids = await node.generate(
        prompt="a lighthouse at dusk",
        model_id=BFL,
        modality="depth",
        modality_strength=0.6,
        num_samples=2,
        guidance=3.5,
        num_inference_steps=28,
        width=0,
        height=0,
        seed=99,
        control_image=control,
        unique_id="7",
    )
    assert tuple(images.shape) == (2, 128, 224, 3)
    assert job_id.startswith("job_") and len(asset_ids.split(",")) == 2
    [post] = node_env.requests("POST", "/v1/generate/*")
    body = post["body"]
    assert post["path"] == CUSTOM_POST
    assert body["controlModality"] == "depth" and body["controlStrength"] == pytest.approx(0.6)
    assert body["numOutputs"] == 2 and (body["width"], body["height"]) == (224, 128)
    assert spec.ASSET_ID_RE.match(body["controlImage"])


async def test_img2img_on_the_custom_path_sends_image_and_strength(emulator, settings):
    async with _client(settings) as client:
        submission = await client.submit(_request(image="asset_demo_pose", strength=0.5, num_samples=1))
        job = await client.wait_for_job(submission.job_id)
    assert job.status == "success" and len(job.asset_ids) == 1
    [post] = emulator.requests("POST", "/v1/generate/*")
    assert post["path"] == CUSTOM_POST
    assert post["body"]["image"] == "asset_demo_pose" and post["body"]["strength"] == pytest.approx(0.5)


def test_custom_rules_come_from_the_declared_inputs():
    # issue 8: the hard-coded custom rules became the model's declared inputs (spec.check_request);
    # the same cases, now through the one entry point and the emulator's recorded-shape record.
    model = Model.from_api({"model": models_catalog.get_model(BFL)})
    ok = {"model_id": BFL, "modality": "pose", "control_image_id": "asset_x1", "num_samples": 4, "width": 2048}
    assert spec.check_request(_request(**ok), model)["numOutputs"] == 4
    no_img2img = Model.from_api({"model": {**models_catalog.get_model(BFL), "capabilities": ["controlnet"]}})
    txt_only = Model.from_api({"model": {**models_catalog.get_model(BFL), "capabilities": ["txt2img"]}})
    cases = [
        ({**ok, "extra_inputs": {"numSamples": 2}}, model, "numSamples"),  # the legacy name is not an input
        ({**ok, "image": "asset_init"}, no_img2img, "image"),  # img2img capability needed
        ({**ok, "prompt": "x" * 2049}, model, "prompt"),
        ({**ok, "control_start": 0.8, "control_end": 0.2}, model, "controlStart"),
        (ok, txt_only, "modelId"),
    ]
    for changes, record, field in cases:
        with pytest.raises(ValidationError) as info:
            spec.check_request(_request(**changes), record)
        assert info.value.field == field, (changes, info.value)
    declared = declared_inputs.DeclaredModel.from_record(models_catalog.get_model(BFL))
    strict = {"prompt": "p", "controlImage": "asset_x1", "controlModality": "pose"}
    for body, field in (({**strict, "strength": 0.5}, "strength"), ({**strict, "controlImage": MAP}, "controlImage")):
        with pytest.raises(ValidationError) as info:
            declared_inputs.validate_body(declared, body)
        assert info.value.field == field
    lenient, violation = declared_inputs.first_violation_response(
        declared, {**strict, "controlModality": "openpose", "type": "x", "seed": "12"}
    )
    assert (
        violation is None and lenient["controlModality"] == "pose" and lenient["seed"] == 12 and "type" not in lenient
    )
    assert spec.custom_path("model_bfl-flux-1-dev") == "/generate/custom/model_bfl-flux-1-dev"
    with pytest.raises(ValidationError):
        spec.custom_path("../x")
