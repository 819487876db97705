"""Every request rule is enforced by the client before anything paid is sent.

Each case submits through a real client against the emulator and then reads
the emulator's request log: no request to ``/generate/*`` may appear, and for
rules that hold whatever the model (pure syntax) no request at all.
"""

from __future__ import annotations

import pytest
from helpers import data_url, fast_client, make_png

from scenario_api import ControlNetRequest, NotFoundError, ValidationError

FLUX = "flux.1-dev"
SDXL = "stable-diffusion-xl-base-1.0"
SD15 = "stable-diffusion-v1-5"
MAP = data_url(make_png(64, 64, "edges"))
INIT = data_url(make_png(64, 64, "gradient", mode="RGB"))


_client = fast_client


def _request(**changes) -> ControlNetRequest:
    fields = {"prompt": "a castle on a hill", "model_id": FLUX, "modality": "canny", "control_image": MAP}
    fields.update(changes)
    return ControlNetRequest(**fields)


def _assert_nothing_paid(emulator) -> None:
    paid = emulator.requests("POST", "/v1/generate/*")
    assert paid == [], f"a paid request was sent: {paid}"


async def _rejected(settings, request: ControlNetRequest) -> ValidationError:
    async with _client(settings) as client:
        with pytest.raises(ValidationError) as info:
            await client.submit(request)
        with pytest.raises(ValidationError):
            await client.quote(request)
    return info.value


# (id, request changes, field named, phrase in the message)
SYNTAX_CASES = [
    ("prompt-empty", {"prompt": ""}, "prompt", "non-empty"),
    ("prompt-blank", {"prompt": "   "}, "prompt", "non-empty"),
    ("model-dotdot", {"model_id": "../x"}, "modelId", "model id like"),
    ("model-slash", {"model_id": "a/b"}, "modelId", "model id like"),
    ("model-query", {"model_id": "flux.1-dev?x=1"}, "modelId", "model id like"),
    ("model-empty", {"model_id": ""}, "modelId", "model id like"),
    ("modality-empty", {"modality": ""}, "modality", "non-empty"),
    ("weight-zero", {"modality": "canny:0"}, "modality", "(0, 1]"),
    ("weight-above-one", {"modality": "canny:1.5"}, "modality", "(0, 1]"),
    ("weight-not-number", {"modality": "canny:abc"}, "modality", "numeric weight"),
    ("modality-duplicate", {"modality": "canny,canny"}, "modality", "at most once"),
    ("modality-bad-item", {"modality": "canny;depth"}, "modality", "name:weight"),
    ("alias-openpose", {"modality": "openpose"}, "modality", "canonical name 'pose'"),
    ("alias-normal", {"modality": "normal"}, "modality", "canonical name 'normal-map'"),
    ("samples-zero", {"num_samples": 0}, "numSamples", "from 1 to 128"),
    ("samples-129", {"num_samples": 129}, "numSamples", "from 1 to 128"),
    ("steps-zero", {"num_inference_steps": 0}, "numInferenceSteps", "from 1 to 150"),
    ("steps-151", {"num_inference_steps": 151}, "numInferenceSteps", "from 1 to 150"),
    ("seed-negative", {"seed": -1}, "seed", "from 0 to 2147483647"),
    ("seed-too-big", {"seed": 2**31}, "seed", "from 0 to 2147483647"),
    ("strength-on-txt2img", {"strength": 0.5}, "strength", "init image"),
    ("control-start-after-end", {"control_start": 0.6, "control_end": 0.4}, "controlStart", "below controlEnd"),
    ("control-both", {"control_image_id": "asset_demo_canny"}, "controlImage", "exactly one"),
    ("control-neither", {"control_image": None}, "controlImage", "exactly one"),
    ("control-bad-data-url", {"control_image": "data:image/png;base64,!!!!"}, "controlImage", "data URL"),
    (
        "control-corrupt-base64",
        {"control_image": "data:image/png;base64," + "A" * 80 + "@@@@"},
        "controlImage",
        "valid base64",
    ),
    ("control-http-url", {"control_image": "https://example.com/map.png"}, "controlImage", "data URL"),
    ("control-bad-asset-id", {"control_image": None, "control_image_id": "asset-x"}, "controlImageId", "asset"),
    ("control-asset-traversal", {"control_image": None, "control_image_id": "../asset_x"}, "controlImageId", "asset"),
    ("strength-zero-img2img", {"image": INIT, "strength": 0.0}, "strength", "[0.01, 1]"),
    ("strength-above-one-img2img", {"image": INIT, "strength": 1.5}, "strength", "[0.01, 1]"),
    ("init-image-empty", {"image": ""}, "image", "data URL or an asset id"),
    ("init-image-bad", {"image": "not-an-image"}, "image", "data URL or an asset id"),
    # outside every family's range: the widest range is named, before any request
    ("width-not-multiple-of-8", {"width": 516}, "width", "a multiple of 8"),
    ("height-out-of-range", {"height": 4096}, "height", "from 64 to 2048"),
    ("width-below-64", {"width": 32}, "width", "from 64"),
    ("guidance-above-every-family", {"guidance": 25}, "guidance", "in [0, 20]"),
]


@pytest.mark.parametrize("changes, field, phrase", [c[1:] for c in SYNTAX_CASES], ids=[c[0] for c in SYNTAX_CASES])
async def test_syntax_errors_send_nothing_at_all(emulator, settings, changes, field, phrase):
    err = await _rejected(settings, _request(**changes))
    assert err.field == field
    text = str(err)
    assert field in text and "allowed:" in text and phrase in text
    assert emulator.log() == []


# Rules that depend on the model family: only the free model lookup may be sent.
FAMILY_CASES = [
    ("flux-two-modalities", {"modality": "canny,depth"}, "modality", "exactly one modality"),
    ("sd15-four-modalities", {"model_id": SD15, "modality": "canny,pose,depth,seg"}, "modality", "at most 3"),
    ("flux-sd-only-name", {"modality": "seg"}, "modality", "for Flux models one of"),
    ("sdxl-flux-only-name", {"model_id": SDXL, "modality": "tile"}, "modality", "for SDXL models one of"),
    ("sdxl-sd15-only-name", {"model_id": SDXL, "modality": "lineart"}, "modality", "for SDXL models one of"),
    ("sdxl-preset-with-modality", {"model_id": SDXL, "modality": "character,canny"}, "modality", "preset"),
    ("flux-preset", {"modality": "character"}, "modality", "for Flux models one of"),
    ("flux-guidance-11", {"guidance": 11}, "guidance", "in [0, 10] for Flux models"),
    ("sdxl-256", {"model_id": SDXL, "width": 256}, "width", "from 512 to 2048"),
    ("sd15-1536", {"model_id": SD15, "height": 1536}, "height", "from 64 to 1024"),
    ("sdxl-control-start", {"model_id": SDXL, "control_start": 0.1}, "controlStart", "only on Flux"),
    (
        "sd15-negative-prompt-strength",
        {"model_id": SD15, "negative_prompt_strength": 1.0},
        "negativePromptStrength",
        "only on Flux",
    ),
    ("flux-scheduler", {"scheduler": "EulerDiscreteScheduler"}, "scheduler", "no scheduler on Flux"),
    ("sdxl-unknown-scheduler", {"model_id": SDXL, "scheduler": "FooScheduler"}, "scheduler", "one of:"),
    ("custom-model-without-controlnet", {"model_id": "model_demo-custom-txt2img"}, "modelId", "can't do ControlNet"),
]


@pytest.mark.parametrize("changes, field, phrase", [c[1:] for c in FAMILY_CASES], ids=[c[0] for c in FAMILY_CASES])
async def test_family_rules_send_only_the_model_lookup(emulator, settings, changes, field, phrase):
    request = _request(**changes)
    err = await _rejected(settings, request)
    assert err.field == field
    assert field in str(err) and phrase in str(err)
    _assert_nothing_paid(emulator)
    paths = {(e["method"], e["path"]) for e in emulator.log()}
    assert paths == {("GET", f"/v1/models/{request.model_id}")}


async def test_model_lookup_is_cached_per_client(emulator, settings):
    async with _client(settings) as client:
        first = await client.get_model(SDXL)
        again = await client.get_model(SDXL)
    assert first is again and first.family == "sd-xl"
    assert len(emulator.requests("GET", f"/v1/models/{SDXL}")) == 1


async def test_guidance_15_is_fine_on_sdxl(emulator, settings):
    async with _client(settings) as client:
        submission = await client.submit(_request(model_id=SDXL, guidance=15, width=512, height=512))
    assert submission.job_id.startswith("job_")
    (paid,) = emulator.requests("POST", "/v1/generate/controlnet")
    assert paid["status"] == 200 and paid["body"]["guidance"] == 15


async def test_unknown_model_is_not_found_and_nothing_is_submitted(emulator, settings):
    async with _client(settings) as client:
        with pytest.raises(NotFoundError) as info:
            await client.submit(_request(model_id="no-such-model"))
    assert info.value.status == 404 and "no-such-model" in str(info.value)
    _assert_nothing_paid(emulator)
    assert [e["path"] for e in emulator.log()] == ["/v1/models/no-such-model"]


BAD_IDS = ["../job_x", "job_a/b", "job_", "", "job x", "asset_1", 42]


@pytest.mark.parametrize("bad", BAD_IDS, ids=[repr(b) for b in BAD_IDS])
async def test_malformed_job_ids_are_refused_without_a_request(emulator, settings, bad):
    async with _client(settings) as client:
        for call in (client.get_job, client.wait_for_job, client.cancel_job):
            with pytest.raises(ValidationError) as info:
                await call(bad)
            assert info.value.field == "jobId" and "job id like" in str(info.value)
    assert emulator.log() == []


@pytest.mark.parametrize("bad", ["../asset_x", "asset_a/b", "asset_", "job_1", "asset_x?y=1", None])
async def test_malformed_asset_ids_are_refused_without_a_request(emulator, settings, bad):
    async with _client(settings) as client:
        for call in (client.get_asset, client.download_asset):
            with pytest.raises(ValidationError) as info:
                await call(bad)
            assert info.value.field == "assetId" and "asset id like" in str(info.value)
    assert emulator.log() == []


async def test_list_jobs_page_size_is_bounded(emulator, settings):
    async with _client(settings) as client:
        for size in (0, 101):
            with pytest.raises(ValidationError, match="pageSize"):
                await client.list_jobs(page_size=size)
    assert emulator.log() == []


async def test_valid_request_passes_and_always_sends_a_seed(emulator, settings):
    async with _client(settings) as client:
        body = await client.validate(_request())
        submission = await client.submit(_request())
    assert "seed" not in body  # validate() does not draw a seed; submit() does
    (paid,) = emulator.requests("POST", "/v1/generate/controlnet")
    assert isinstance(paid["body"]["seed"], int)
    assert submission.request is not None and paid["body"]["seed"] == submission.request.seed
    assert submission.job.input.get("seed") is not None
