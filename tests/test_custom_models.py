"""Issue 8 end to end: the generate nodes and the client on today's Scenario models, through the emulator.

One test per mapping (Flux custom, Z-Image, a LoRA stack, a composition, a
legacy LoRA, a model no code knows), each asserting the exact body in the
emulator's request log; every schema violation refused with no upload and no
submit; quotes that upload nothing; the custom records cached per process.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import data_url, fast_client, make_array, make_png
from pack_loader import image_tensor, submodule

from scenario_api import ControlNetRequest, spec

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

FLUX = "model_bfl-flux-1-dev"
ZIMAGE = "model_z-image"
INK, CLAY, MINE = "model_emu-flux-lora-ink", "model_emu-flux-lora-clay", "model_my-flux-style"
COMPOSITION = "model_emu-flux-composition"
DEMO_MAP = "asset_demo_canny"  # 512 x 512

WIDGETS: dict[str, Any] = {
    "prompt": "a lighthouse at dusk",
    "model_id": FLUX,
    "modality": "depth",
    "modality_strength": 0.6,
    "num_samples": 2,
    "guidance": 3.5,
    "num_inference_steps": 28,
    "width": 0,
    "height": 0,
    "seed": 99,
}


async def run_node(pack, *, img2img: bool = False, **changes: Any):
    name = "ScenarioImg2ImgControlNet" if img2img else "ScenarioControlNetGenerate"
    node = pack.NODE_CLASS_MAPPINGS[name]()
    widgets = {**WIDGETS, **({"strength": 0.5} if img2img else {}), **changes}
    if "control_image" not in widgets and "control_image_id" not in widgets:
        widgets["control_image_id"] = DEMO_MAP
    return await node.generate(unique_id="7", **widgets)


def the_post(env) -> dict:
    [post] = env.requests("POST", "/v1/generate/*")
    return post


def paid_or_upload(env) -> list:
    return env.requests("POST", "/v1/generate/*") + env.requests("POST", "/v1/assets")


# --------------------------------------------------------------------------- one test per mapping


async def test_flux_custom_mapping(node_env, comfy, pack):
    images, job_id, _ = await run_node(pack)
    post = the_post(node_env)
    assert post["path"] == f"/v1/generate/custom/{FLUX}"
    assert post["body"] == {
        "prompt": "a lighthouse at dusk",
        "controlImage": DEMO_MAP,
        "controlModality": "depth",
        "controlStrength": 0.6,
        "numOutputs": 2,
        "numInferenceSteps": 28,
        "guidance": 3.5,
        "seed": 99,
        "width": 512,
        "height": 512,
    }
    assert tuple(images.shape) == (2, 512, 512, 3) and job_id.startswith("job_")


async def test_z_image_mapping(node_env, comfy, pack):
    control = image_tensor(make_array(203, 117, "edges"))
    images, _, _ = await run_node(pack, model_id=ZIMAGE, control_image=control, negative_prompt="fog")
    post = the_post(node_env)
    assert post["path"] == f"/v1/generate/custom/{ZIMAGE}"
    [upload] = node_env.requests("POST", "/v1/assets")
    sent = post["body"]["controlImage"]
    assert isinstance(sent, list) and len(sent) == 1 and spec.ASSET_ID_RE.match(sent[0])
    assert post["body"] == {
        "prompt": "a lighthouse at dusk",
        "controlImage": sent,  # a one-item array: Z-Image declares a file_array
        "controlnetConditioningScale": 0.6,  # the node's modality strength, by meaning
        "numOutputs": 2,
        "numInferenceSteps": 28,
        "guidance": 3.5,
        "seed": 99,
        "negativePrompt": "fog",
        "width": 224,
        "height": 128,
    }
    assert "controlModality" not in post["body"]  # Z-Image has no modality input
    assert upload["status"] == 200 and tuple(images.shape) == (2, 128, 224, 3)


async def test_lora_stack_mapping(node_env, comfy, pack):
    await run_node(pack, loras=f"{INK}:0.8, {MINE}:0.5 ,{CLAY}")
    body = the_post(node_env)["body"]
    assert body == {
        "prompt": "a lighthouse at dusk",
        "controlImage": DEMO_MAP,
        "controlModality": "depth",
        "controlStrength": 0.6,
        "numOutputs": 2,
        "numInferenceSteps": 28,
        "guidance": 3.5,
        "seed": 99,
        "width": 512,
        "height": 512,
        "loras": [INK, MINE, CLAY],
        "lorasScale": [0.8, 0.5, 1.0],
    }
    looked_up = {e["path"] for e in node_env.requests("GET", "/v1/models/*")}
    assert {f"/v1/models/{m}" for m in (INK, MINE, CLAY)} <= looked_up  # types checked before spending


async def test_composition_mapping(node_env, comfy, pack):
    await run_node(pack, loras=f"{COMPOSITION}, {INK}:0.5", num_samples=1, modality="canny", modality_strength=0.7)
    body = the_post(node_env)["body"]
    assert body == {
        "prompt": "a lighthouse at dusk",
        "controlImage": DEMO_MAP,
        "controlModality": "canny",
        "controlStrength": 0.7,
        "numOutputs": 1,
        "numInferenceSteps": 28,
        "guidance": 3.5,
        "seed": 99,
        "width": 512,
        "height": 512,
        "modelId": COMPOSITION,  # a composition goes through the base's single-model input
        "loras": [INK],
        "lorasScale": [0.5],
    }


async def test_legacy_lora_mapping(node_env, comfy, pack):
    await run_node(pack, model_id="model_demo-flux-lora", num_samples=1, width=512, height=512)
    post = the_post(node_env)
    assert post["path"] == "/v1/generate/controlnet"
    assert post["body"] == {
        "prompt": "a lighthouse at dusk",
        "modelId": "model_demo-flux-lora",
        "modality": "depth:0.6",
        "numSamples": 1,
        "guidance": 3.5,
        "numInferenceSteps": 28,
        "width": 512,
        "height": 512,
        "controlImageId": DEMO_MAP,
        "seed": 99,
    }


async def test_a_model_no_code_knows_maps_by_meaning(node_env, comfy, pack):
    await run_node(pack, model_id="model_emu-sketchnet", modality="scribble", modality_strength=0.9, num_samples=3)
    post = the_post(node_env)
    assert post["body"] == {
        "text": "a lighthouse at dusk",
        "conditioningImages": [DEMO_MAP],
        "controlType": "scribble",
        "controlWeight": 0.9,
        "numImages": 3,
        "steps": 28,
        "cfg_scale": 3.5,
        "seed": 99,
        "outputWidth": 512,
        "outputHeight": 512,
    }


async def test_img2img_on_z_image_sends_image_and_strength(node_env, comfy, pack):
    await run_node(pack, img2img=True, model_id=ZIMAGE, image_id="asset_demo_pose", num_samples=1)
    body = the_post(node_env)["body"]
    assert body["image"] == "asset_demo_pose" and body["strength"] == 0.5 and body["controlImage"] == [DEMO_MAP]


async def test_extra_inputs_can_name_a_modality_the_node_list_lacks(node_env, comfy, pack):
    # SketchNet's controlType takes "edge", which is not in the node's modality list: extra_inputs wins
    await run_node(pack, model_id="model_emu-sketchnet", modality="canny", extra_inputs='{"controlType": "edge"}')
    assert the_post(node_env)["body"]["controlType"] == "edge"


async def test_extra_inputs_reach_the_body(node_env, comfy, pack):
    await run_node(pack, num_samples=1, extra_inputs='{"controlEnd": 0.65, "controlModality": "pose"}')
    body = the_post(node_env)["body"]
    assert body["controlEnd"] == 0.65 and body["controlModality"] == "pose"


# --------------------------------------------------------------------------- violations: nothing uploaded, nothing paid


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"loras": f"{INK}:3"}, "lorasScale", ["in [0, 2]", FLUX]),
        ({"loras": ",".join([INK] * 7)}, "loras", ["at most 6 items", FLUX]),
        ({"loras": f"{INK}:0.33"}, "lorasScale", ["multiple of 0.05"]),
        ({"loras": "model_emu-flux2-lora"}, "loras", ["flux.1-lora, flux.1-composition", "flux.2-dev-lora"]),
        ({"loras": "model_FIXTUREMISSING"}, "loras", ["exists"]),
        ({"loras": f"{COMPOSITION}:0.5"}, "loras", ["carries its own"]),
        ({"model_id": ZIMAGE, "loras": INK}, "loras", ["zimage-lora", "flux.1-lora"]),
        ({"model_id": ZIMAGE, "control_start": 0.2}, "control_start", [ZIMAGE, "its inputs:"]),
        ({"negative_prompt": "fog"}, "negative_prompt", [FLUX, "negative prompt"]),
        ({"extra_inputs": '{"aspectRatio": "1:1"}'}, "aspectRatio", ["controlModality", "numOutputs"]),
        ({"extra_inputs": '{"numOutputs": 5}'}, "numOutputs", ["from 1 to 4"]),
        ({"extra_inputs": '{"controlModality": "seg"}'}, "controlModality", ["canny, tile"]),
        ({"num_samples": 5}, "numOutputs", ["from 1 to 4"]),
        ({"width": 1000, "height": 512}, "width", ["multiple of 16"]),
        ({"modality": "seg"}, "modality", ["canny, tile"]),
        ({"model_id": "flux.1-dev", "loras": INK}, "loras", ["legacy"]),
        ({"model_id": "model_my-zimage-style"}, "modelId", ["zimage-lora", "loras"]),
        ({"model_id": "model_emu-sketchnet", "modality": "canny"}, "modality", ["edge, depth, scribble"]),
    ],
)
async def test_schema_violations_upload_and_submit_nothing(node_env, comfy, pack, changes, field, words):
    control = image_tensor(make_array(64, 64, "edges"))  # pixels: an upload would show in the log
    with pytest.raises(submodule("scenario_api.errors").ValidationError) as info:
        await run_node(pack, control_image=control, **changes)
    assert info.value.field == field, str(info.value)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert paid_or_upload(node_env) == []


def test_loras_grammar_is_a_widget_check(pack):
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]
    answer = node.VALIDATE_INPUTS(loras="model_a:x", extra_inputs="[1]")
    assert isinstance(answer, str) and "loras" in answer and "extra_inputs" in answer
    assert node.VALIDATE_INPUTS(loras="model_a:0.5, model_b", extra_inputs='{"a": 1}') is True


# --------------------------------------------------------------------------- client: quotes, cache, lists


async def test_a_quote_uploads_nothing_and_prices_the_prompt_and_cost_inputs(emulator, settings):
    request = ControlNetRequest(
        prompt="p", model_id=ZIMAGE, modality="depth", control_image=data_url(make_png(64, 64)), num_samples=1
    )
    async with fast_client(settings) as client:
        quote = await client.quote(request)
    assert emulator.requests("POST", "/v1/assets") == []
    [post] = emulator.requests("POST", "/v1/generate/*")
    assert post["query"]["dryRun"] == "true" and "controlImage" not in post["body"]
    assert post["body"]["numOutputs"] == 1 and quote.creative_units == 5.75
    assert quote.details == {"custom-generation": 4.0, "quality-gate": 1.75}


async def test_custom_records_are_cached_per_process(emulator, settings):
    request = ControlNetRequest(prompt="p", model_id=ZIMAGE, modality="depth", control_image_id=DEMO_MAP)
    for _ in range(2):
        async with fast_client(settings) as client:
            await client.validate(request)
    assert len(emulator.requests("GET", f"/v1/models/{ZIMAGE}")) == 1
    async with fast_client(settings) as client:
        await client.validate(ControlNetRequest(prompt="p", control_image_id=DEMO_MAP))
        await client.validate(ControlNetRequest(prompt="p", control_image_id=DEMO_MAP))
    async with fast_client(settings) as client:
        await client.validate(ControlNetRequest(prompt="p", control_image_id=DEMO_MAP))
    assert len(emulator.requests("GET", "/v1/models/flux.1-dev")) == 2  # legacy records: per client, as before


async def test_lost_reply_on_a_lora_submit_is_adopted(emulator, settings):
    emulator.fault(target="POST /v1/generate/*", kind="disconnect_after_accept")
    request = ControlNetRequest(
        prompt="p", model_id=ZIMAGE, modality="depth", control_image_id=DEMO_MAP, loras="model_my-zimage-style:0.7"
    )
    async with fast_client(settings) as client:
        submission = await client.submit(request)
    assert submission.adopted and len(emulator.requests("POST", "/v1/generate/*")) == 1
    assert submission.job.input["loras"] == ["model_my-zimage-style"]


async def test_listing_models_across_pages(emulator, settings):
    async with fast_client(settings) as client:
        mine = await client.list_models()
        public = await client.list_models(privacy="public", page_size=2, max_pages=50)
        loras = await client.list_models(privacy="public", model_type="flux.1-lora", page_size=1, max_pages=50)
    assert {m.raw["privacy"] for m in mine} == {"private"} and "model_my-composition" in {m.model_id for m in mine}
    assert {FLUX, ZIMAGE, COMPOSITION} <= {m.model_id for m in public}
    assert len(emulator.requests("GET", "/v1/models")) >= 1 + 8
    assert {m.type for m in loras} == {"flux.1-lora"} and len(loras) >= 3


async def test_the_node_says_the_modality_is_not_used_on_z_image(node_env, comfy, pack):
    await run_node(pack, model_id=ZIMAGE, num_samples=1)
    said = [text for node_id, text in comfy.texts if node_id == "7"]
    note = "modality not used by this model (model_z-image declares no modality input)"
    assert note in said  # said while checking, then on every status line until the end
    assert said[-1].endswith(note) and said[-1].startswith("done")
    comfy.texts.clear()
    await run_node(pack, num_samples=1)  # Flux custom has a modality input: nothing to say
    assert not any("not used" in text for _, text in comfy.texts)
