"""Bad inputs are refused before anything is paid: VALIDATE_INPUTS, tensor checks, family rules."""

from __future__ import annotations

import pytest
import torch
from helpers import make_array
from pack_loader import image_tensor, submodule

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

GEN = "ScenarioControlNetGenerate"
I2I = "ScenarioImg2ImgControlNet"


def widgets(**over):
    base = {
        "prompt": "a castle",
        "model_id": "flux.1-dev",
        "modality": "canny",
        "modality_strength": 1.0,
        "num_samples": 1,
        "guidance": 3.5,
        "num_inference_steps": 30,
        "width": 0,
        "height": 0,
        "seed": 1,
    }
    base.update(over)
    return base


def validate(pack, node_id="ScenarioControlNetGenerate", **kw):
    return pack.NODE_CLASS_MAPPINGS[node_id].VALIDATE_INPUTS(**kw)


# --------------------------------------------------------------------------- VALIDATE_INPUTS (widget constants)


def test_validate_inputs_accepts_defaults_and_linked_values(pack):
    defaults = {k: v[1].get("default") for k, v in pack.NODE_CLASS_MAPPINGS[GEN].INPUT_TYPES()["required"].items()}
    assert validate(pack, model_id=defaults["model_id"], modality=defaults["modality"], width=0, height=0) is True
    # linked inputs arrive as None in ComfyUI's validation: nothing to check yet
    assert validate(pack, model_id=None, modality=None, modalities=None, control_image_id=None) is True
    assert validate(pack, I2I, image_id="asset_demo_pose", control_image_id="asset_a,asset_b") is True


@pytest.mark.parametrize(
    "kwargs, names",
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   \n"}, "prompt"),
        ({"model_id": "../etc/passwd"}, "model_id"),
        ({"model_id": "a/b"}, "model_id"),
        ({"modality": "openpose"}, "modality"),
        ({"modalities": "canny:0"}, "modalities"),
        ({"modalities": "canny:1.5"}, "modalities"),
        ({"modalities": "canny:abc"}, "modalities"),
        ({"modalities": "wings"}, "modalities"),
        ({"modalities": "canny,canny"}, "modalities"),
        ({"modalities": "canny,depth,pose,seg"}, "modalities"),
        ({"modalities": "character,canny"}, "modalities"),
        ({"width": 100}, "width"),
        ({"height": 40}, "height"),
        ({"width": 2056}, "width"),
        ({"control_start": 0.6, "control_end": 0.5}, "control_start"),
        ({"control_start": -0.5}, "control_start"),
        ({"control_image_id": "asset_ok, not-an-id"}, "control_image_id"),
    ],
)
def test_validate_inputs_rejects_with_named_input(pack, kwargs, names):
    result = validate(pack, **kwargs)
    assert isinstance(result, str), result
    assert result.startswith("Scenario: ") and names in result


@pytest.mark.parametrize("node_id", [GEN, I2I])
def test_validate_inputs_declares_exactly_the_checked_widgets(pack, node_id):
    # ComfyUI passes (and skips its own range checks for) exactly the names in the signature;
    # a **kwargs would switch its checks off for every input, strength and guidance included.
    import inspect

    validation = submodule("nodes.validation")
    spec = inspect.getfullargspec(pack.NODE_CLASS_MAPPINGS[node_id].VALIDATE_INPUTS)
    assert spec.varkw is None and spec.varargs is None
    assert spec.args == ["cls", *validation.WIDGET_NAMES]
    assert "prompt" in spec.args and "guidance" not in spec.args and "strength" not in spec.args
    declared = pack.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
    names = {n for group in ("required", "optional") for n in declared[group]}
    img2img_only = {"image_id", "init_image_format"}
    assert set(validation.WIDGET_NAMES) - img2img_only <= names
    if node_id == I2I:
        assert img2img_only <= names


def test_validate_inputs_modalities_accepted_by_some_family(pack):
    assert validate(pack, modalities="depth:0.5,pose:1.0") is True  # SDXL / SD 1.5
    assert validate(pack, modalities="landscape") is True
    assert validate(pack, modalities="low-quality:0.3") is True  # Flux


def test_validate_inputs_img2img_and_recovery_nodes(pack):
    assert isinstance(validate(pack, I2I, image_id="img_123"), str)
    assert validate(pack, "ScenarioPollJob", job_id="job_abc, job_def") is True
    assert "job_id" in validate(pack, "ScenarioPollJob", job_id="")
    assert "job_id" in validate(pack, "ScenarioPollJob", job_id="asset_abc")
    assert validate(pack, "ScenarioFetchAsset", asset_ids='["asset_a", "asset_b"]') is True
    assert validate(pack, "ScenarioFetchAsset", asset_ids="asset_a\nasset_b") is True
    assert "asset_ids" in validate(pack, "ScenarioFetchAsset", asset_ids="job_abc")
    assert validate(pack, "ScenarioFetchAsset", asset_ids=None) is True


# --------------------------------------------------------------------------- FUNCTION: refused with no paid request


def paid_or_upload(emulator):
    return [e for e in emulator.log() if e["method"] == "POST"]


async def refuse(pack, node_id, **kw):
    errors = submodule("scenario_api.errors")
    with pytest.raises(errors.ScenarioError) as info:
        await pack.NODE_CLASS_MAPPINGS[node_id]().generate(**kw)
    text = str(info.value)
    assert text.startswith("Scenario: "), text
    return info.value


async def test_neither_or_both_control_sources(node_env, comfy, pack):
    err = await refuse(pack, GEN, **widgets())
    assert "control_image" in str(err) and "control_image_id" in str(err) and "neither" in str(err)
    err = await refuse(
        pack, GEN, **widgets(), control_image=image_tensor(make_array(64, 64)), control_image_id="asset_x"
    )
    assert "both" in str(err)
    assert node_env.log() == []  # not even a model lookup


@pytest.mark.parametrize(
    "tensor, expect",
    [
        (torch.zeros(64, 64), "control_image"),
        (torch.zeros(1, 64, 64, 2), "channels"),
        (torch.zeros(0, 64, 64, 3), "empty"),
        ("not a tensor", "IMAGE"),
    ],
)
async def test_bad_tensors(node_env, comfy, pack, tensor, expect):
    err = await refuse(pack, GEN, **widgets(), control_image=tensor)
    assert expect in str(err)
    assert node_env.log() == []


async def test_init_batch_must_be_one_or_match(node_env, comfy, pack):
    controls = image_tensor(*(make_array(64, 64, p) for p in ("shapes", "checker", "gradient")))
    inits = image_tensor(make_array(64, 64), make_array(64, 64, "noise"))
    err = await refuse(pack, I2I, **widgets(), strength=0.5, control_image=controls, image=inits)
    assert "image / image_id" in str(err) and "2 init images for 3 control images" in str(err)
    err = await refuse(pack, I2I, **widgets(), strength=0.5, control_image=controls)
    assert "image_id" in str(err) and "neither" in str(err)
    assert node_env.log() == []


# Rules that fail for every model family: refused before ANY request, not even the free model lookup
# or an asset read (the control map is given as an asset id, whose size would otherwise be read).
@pytest.mark.parametrize(
    "node_id, over, field",
    [
        (GEN, {"prompt": ""}, "prompt"),
        (GEN, {"prompt": "  \t "}, "prompt"),
        (GEN, {"num_samples": 0}, "num_samples"),
        (GEN, {"num_inference_steps": 151}, "num_inference_steps"),
        (GEN, {"seed": -1}, "seed"),
        (GEN, {"modality_strength": 0.0}, "modality_strength"),
        (GEN, {"guidance": 25.0}, "guidance"),  # above every family's limit (a linked value skips ComfyUI's max)
        (I2I, {"strength": 1.5}, "strength"),
        (I2I, {"strength": 0.0}, "strength"),
    ],
)
async def test_family_independent_errors_send_no_request_at_all(node_env, comfy, pack, node_id, over, field):
    sources = {"control_image_id": "asset_demo_canny"}
    if node_id == I2I:
        sources["image_id"] = "asset_demo_pose"
        over = {"strength": 0.5, **over}
    err = await refuse(pack, node_id, **widgets(**over), **sources)
    assert field in str(err)
    assert node_env.log() == []


# Rules that depend on the model's family need its (free) lookup, and nothing else: no asset read, no POST.
@pytest.mark.parametrize(
    "over, extra, field",
    [
        ({"modality": "seg"}, {}, "modality"),  # seg is SD-only: refused for flux.1-dev
        ({"guidance": 11.0}, {}, "guidance"),
        ({"guidance": 15.0}, {"control_image_id": "asset_demo_canny"}, "guidance"),  # Flux allows 0-10
        ({"model_id": "stable-diffusion-xl-base-1.0", "modality": "pose", "width": 256, "height": 512}, {}, "width"),
        ({"model_id": "stable-diffusion-v1-5"}, {"control_start": 0.1}, "controlStart"),
        ({}, {"scheduler": "DDIMScheduler"}, "scheduler"),
        ({}, {"modalities": "depth:0.5,pose:1.0"}, "modality"),  # Flux takes exactly one
        ({}, {"modalities": "seg", "control_image_id": "asset_demo_canny, asset_demo_pose"}, "modality"),
        ({"model_id": "model_demo-custom-txt2img"}, {}, "ControlNet"),
    ],
)
async def test_family_rules_refused_after_only_the_model_lookup(node_env, comfy, pack, over, extra, field):
    if "control_image_id" not in extra:
        extra = {**extra, "control_image": image_tensor(make_array(64, 64))}
    kw = widgets(**over)
    err = await refuse(pack, GEN, **kw, **extra)
    assert field in str(err)
    assert paid_or_upload(node_env) == []
    assert [(e["method"], e["path"]) for e in node_env.log()] == [("GET", f"/v1/models/{kw['model_id']}")]


async def test_unknown_model_is_a_clear_404_without_post(node_env, comfy, pack):
    errors = submodule("scenario_api.errors")
    with pytest.raises(errors.NotFoundError) as info:
        await pack.NODE_CLASS_MAPPINGS[GEN]().generate(**widgets(model_id="no-such-model"), control_image_id="asset_x")
    assert str(info.value).startswith("Scenario: ")
    assert paid_or_upload(node_env) == []


async def test_linked_bad_id_is_caught_in_function(node_env, comfy, pack):
    # a linked STRING skips VALIDATE_INPUTS; FUNCTION repeats the widget checks
    err = await refuse(pack, GEN, **widgets(), control_image_id="asset_ok,../../x")
    assert "control_image_id" in str(err)
    assert node_env.log() == []


async def test_strength_out_of_range_on_img2img(node_env, comfy, pack):
    err = await refuse(
        pack, I2I, **widgets(), strength=1.5, control_image_id="asset_demo_canny", image_id="asset_demo_pose"
    )
    assert "strength" in str(err)
    assert node_env.log() == []  # not even the model lookup or the assets' sizes


def test_validate_inputs_reports_every_problem_at_once(pack):
    result = validate(pack, modalities="canny:0", width=100, control_start=0.9, control_end=0.2)
    assert isinstance(result, str) and result.startswith("Scenario: ")
    assert "modalities" in result and "width" in result and "control_start" in result
