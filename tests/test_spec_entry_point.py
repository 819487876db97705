"""The one validation entry point (``spec.check_request``) and the rules every caller shares.

A request is checked against a model record; the widget checks, the client and
the emulator all say the same thing about the same bad value, because each
rule is written once in ``scenario_api.spec``.
"""

from __future__ import annotations

import pytest
from helpers import data_url, fast_client, make_png
from pack_loader import submodule

from scenario_api import ControlNetRequest, ValidationError, declared_inputs, spec
from scenario_api.emulator import models_catalog
from scenario_api.models import Model

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

MAP = data_url(make_png(64, 64, "edges"))
FLUX = Model(model_id="flux.1-dev", type="flux.1", family=spec.FLUX)
SDXL = Model(model_id="stable-diffusion-xl-base-1.0", type="sd-xl", family=spec.SDXL)
# issue 8: a custom model's rules are its declared inputs, so the record is the emulator's (as recorded)
CUSTOM_CN = Model.from_api({"model": models_catalog.get_model("model_bfl-flux-1-dev")})
CUSTOM_TXT = Model(
    model_id="model_demo-custom-txt2img", type="custom", family=spec.CUSTOM, custom=True, capabilities=("txt2img",)
)


def _request(**changes) -> ControlNetRequest:
    fields = {"prompt": "a castle", "model_id": "flux.1-dev", "modality": "canny", "control_image": MAP}
    fields.update(changes)
    return ControlNetRequest(**fields)


# --------------------------------------------------------------------------- spec.check_request


@pytest.mark.parametrize(
    "model, changes, field, param, allowed_words",
    [
        (FLUX, {"modality": "seg"}, "modality", "modality", ["for Flux models one of:", *spec.FLUX_MODALITIES]),
        (FLUX, {"modality": "canny,depth"}, "modality", "modality", ["exactly one modality"]),
        (FLUX, {"guidance": 11}, "guidance", "guidance", ["in [0, 10]", "Flux"]),
        (FLUX, {"scheduler": "EulerDiscreteScheduler"}, "scheduler", "scheduler", ["no scheduler on Flux"]),
        (SDXL, {"model_id": SDXL.model_id, "width": 256}, "width", "width", ["from 512 to 2048", "SDXL"]),
        (
            SDXL,
            {"model_id": SDXL.model_id, "control_start": 0.1},
            "controlStart",
            "control_start",
            ["only on Flux models"],
        ),
        (SDXL, {"model_id": SDXL.model_id, "modality": "tile"}, "modality", "modality", list(spec.SDXL_MODALITIES)),
        (CUSTOM_CN, {"model_id": CUSTOM_CN.model_id, "num_samples": 5}, "numOutputs", "num_samples", ["from 1 to 4"]),
        (CUSTOM_TXT, {"model_id": CUSTOM_TXT.model_id}, "modelId", "model_id", ["'controlnet' capability"]),
    ],
)
def test_a_family_rule_names_the_field_and_the_allowed_values(model, changes, field, param, allowed_words):
    with pytest.raises(ValidationError) as info:
        spec.check_request(_request(**changes), model)
    err = info.value
    assert (err.field, err.param) == (field, param)
    for word in allowed_words:
        assert word in err.allowed, (word, err.allowed)
    assert str(err).startswith(f"Invalid {field}") and "allowed: " + err.allowed in str(err)


def test_check_request_returns_the_strict_wire_body():
    body = spec.check_request(_request(modality="depth:0.50", guidance=4, seed=7), FLUX)
    assert body["modality"] == "depth:0.5" and body["guidance"] == 4.0 and isinstance(body["guidance"], float)
    assert body["controlImage"] == MAP and body["seed"] == 7 and "image" not in body
    sd = spec.check_request(_request(model_id=SDXL.model_id, scheduler="EulerDiscrete"), SDXL)
    assert sd["scheduler"] == "EulerDiscreteScheduler" and sd["disableModalityDetection"] is True


def test_custom_model_data_urls_pass_with_the_placeholder_and_come_back_for_upload():
    body = spec.check_request(_request(model_id=CUSTOM_CN.model_id, modality="pose:0.4", image=MAP), CUSTOM_CN)
    assert body["controlImage"] == MAP and body["image"] == MAP  # the caller uploads them
    assert body["controlModality"] == "pose" and body["controlStrength"] == pytest.approx(0.4)
    assert spec.PLACEHOLDER_ASSET_ID not in body.values()
    only_txt = Model(model_id="m_x", type="custom", family=spec.CUSTOM, custom=True, capabilities=("controlnet",))
    with pytest.raises(ValidationError) as info:
        spec.check_request(_request(model_id="m_x", image=MAP), only_txt)
    assert info.value.field == "image" and "img2img" in info.value.allowed


def test_precheck_refuses_only_what_no_family_accepts():
    spec.precheck_request(_request(modality="seg"))  # SDXL accepts it: wait for the model
    with pytest.raises(ValidationError) as info:
        spec.precheck_request(_request(guidance=25))
    assert info.value.field == "guidance" and info.value.allowed == spec.RULES["guidance"].describe()
    with pytest.raises(ValidationError) as info:
        spec.precheck_request(_request(num_samples=0))
    assert str(info.value) == str(pytest.raises(ValidationError, spec.check_field, "numSamples", 0).value)


def test_field_maps_are_one_table_read_both_ways():
    assert spec.WIRE_TO_PARAM["numSamples"] == "num_samples" and spec.PARAM_TO_WIRE["num_samples"] == "numSamples"
    assert all(spec.WIRE_TO_PARAM[wire] == param for param, wire in spec.PARAM_TO_WIRE.items())
    assert declared_inputs.WIDGET_OF_ROLE["num_outputs"] == "num_samples"  # issue 8: by meaning, not by name
    assert spec.id_shape("jobId").startswith("a job id like")


# --------------------------------------------------------------------------- the emulator: lenient reading, same rules


def test_lenient_reading_then_the_same_rule_checker():
    raw = {"prompt": "p", "modelId": "flux.1-dev", "modality": "OpenPose", "imageUrl": MAP, "seed": "42", "type": "x"}
    body = spec.validate_body(
        "controlnet", spec.normalise_lenient(raw, "controlnet", spec.FLUX), spec.FLUX, image_refs=spec.SERVER_IMAGE_REFS
    )
    assert body == {"prompt": "p", "modelId": "flux.1-dev", "modality": "pose", "controlImage": MAP, "seed": 42}
    with pytest.raises(ValidationError) as strict:
        spec.validate_body("controlnet", {**raw, "type": None}, spec.FLUX)
    assert strict.value.field == "imageUrl"  # the client sends documented fields only


async def test_emulator_and_client_give_the_same_message(emulator, settings):
    request = _request(guidance=11, seed=3)
    async with fast_client(settings) as client:
        with pytest.raises(ValidationError) as info:
            await client.submit(request)
    assert emulator.requests("POST", "/v1/generate/*") == []
    with emulator.api() as api:
        answer = api.post("/generate/controlnet", json=request.to_body(spec.FLUX))
    assert answer.status_code == 400
    assert answer.json()["reason"] == str(info.value)
    assert emulator.requests("POST", "/v1/generate/*")[0]["status"] == 400


# --------------------------------------------------------------------------- widgets: the same rule, the same words


@pytest.mark.parametrize(
    "widgets, changes",
    [
        ({"width": 100}, {"width": 100}),
        ({"height": 4096}, {"height": 4096}),
        ({"control_start": 0.6, "control_end": 0.4}, {"control_start": 0.6, "control_end": 0.4}),
        ({"control_end": 1.5}, {"control_end": 1.5}),
        ({"prompt": "  "}, {"prompt": "  "}),
        ({"model_id": "../x"}, {"model_id": "../x"}),
    ],
)
async def test_widget_check_and_client_check_say_the_same(pack, emulator, settings, widgets, changes):
    widget_answer = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"].VALIDATE_INPUTS(**widgets)
    async with fast_client(settings) as client:
        with pytest.raises(ValidationError) as info:
            await client.submit(_request(**changes))
    assert emulator.log() == []  # refused before any request, not even the model lookup
    assert widget_answer == "Scenario: " + str(info.value)


# --------------------------------------------------------------------------- one widget -> request builder


def test_node_and_quote_route_build_the_same_request(pack):
    builder, web_api = submodule("nodes.request_builder"), submodule("nodes.web_api")
    widgets = {
        "prompt": "a house",
        "model_id": " stable-diffusion-v1-5 ",
        "modality": "depth",
        "modality_strength": 0.5,
        "modalities": "",
        "num_samples": 2,
        "guidance": 7.5,
        "num_inference_steps": 20,
        "width": 512,
        "height": 768,
        "seed": 9,
        "scheduler": "default",
        "control_start": -1.0,
        "control_end": -1.0,
        "negative_prompt": "",
        "strength": 0.6,
    }
    node = builder.build_request(widgets, img2img=True)
    quoted, jobs = web_api.quote_request({**widgets, "img2img": True, "batch": 2})
    assert jobs == 2
    assert node.model_id == "stable-diffusion-v1-5" and node.modality == "depth:0.5"
    assert node.scheduler is None and node.control_start is None and node.negative_prompt is None
    assert node.strength == 0.6 and node.control_image is None
    same = ("prompt", "model_id", "modality", "num_samples", "guidance", "num_inference_steps", "width", "height")
    assert {f: getattr(quoted, f) for f in same} == {f: getattr(node, f) for f in same}
    assert quoted.strength == node.strength and quoted.image == quoted.control_image == web_api.PLACEHOLDER_IMAGE
    with pytest.raises(TypeError):
        builder.build_request({**widgets, "not_a_widget": 1}, img2img=True)
    with pytest.raises(submodule("scenario_api.errors").ValidationError) as info:
        builder.build_request({**widgets, "modality_strength": 0}, img2img=False)
    assert info.value.param == "modality_strength"


def test_the_frontend_sends_every_widget_the_builder_reads(pack):
    # web/scenario_core.js lists the widget values it posts to /scenario/quote; a request widget
    # missing there would be priced and checked with its default instead of the node's value.
    import re
    from pathlib import Path

    builder = submodule("nodes.request_builder")
    js = (Path(__file__).resolve().parents[1] / "web" / "scenario_core.js").read_text(encoding="utf-8")
    block = re.search(r"QUOTE_FIELDS = Object\.freeze\(\[(.*?)\]\)", js, re.S)
    assert block is not None
    sent = set(re.findall(r"'([a-z_]+)'", block.group(1)))
    read = set(builder.REQUEST_WIDGETS) | set(builder.MODALITY_WIDGETS) | {builder.STRENGTH_WIDGET}
    price_neutral_text = {"negative_prompt"}  # not sent: multiline text the price never depends on
    assert sent <= read and read - sent == price_neutral_text
