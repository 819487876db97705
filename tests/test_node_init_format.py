"""Img2Img ControlNet's opt-in lossy init image (``init_image_format``), against the emulator over loopback HTTP.

What the emulator received is read from its request log: an upload's ``image`` is logged as the marker of
the exact data URL sent (its length and hash), so a marker equal to the one of a given encoding proves those
bytes, under that MIME type, were uploaded.
"""

from __future__ import annotations

import io
import logging
import re

import numpy as np
import pytest
from helpers import make_array
from pack_loader import image_tensor, submodule
from PIL import Image

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

I2I = "ScenarioImg2ImgControlNet"
LOSSY = [("jpeg q90", "jpeg", 90, "JPEG"), ("jpeg q75", "jpeg", 75, "JPEG"), ("webp q90", "webp", 90, "WEBP")]


def widgets(**over):
    base = {
        "prompt": "a lighthouse at dusk, oil painting",
        "model_id": "flux.1-dev",
        "modality": "canny",
        "modality_strength": 1.0,
        "num_samples": 1,
        "guidance": 3.5,
        "num_inference_steps": 30,
        "width": 0,
        "height": 0,
        "seed": 1234,
        "strength": 0.6,
    }
    base.update(over)
    return base


def photo(width: int = 192, height: int = 128, seed: int = 0) -> np.ndarray:
    """A photo-like HxWx3 picture: smooth colour fields with a little sensor noise."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [
        128 + 90 * np.sin(xs / 23.0) * np.cos(ys / 31.0),
        128 + 80 * np.sin((xs + ys) / 37.0),
        128 + 70 * np.cos(xs / 17.0 - ys / 29.0),
    ]
    noise = np.random.default_rng(seed).normal(0.0, 4.0, (height, width, 3))
    return np.clip(np.rint(np.stack(planes, axis=-1) + noise), 0, 255).astype(np.uint8)


def marker(data: bytes, mime: str) -> str:
    """The request log's entry for an upload of ``data`` as ``mime``."""
    imaging = submodule("scenario_api.imaging")
    logbook = submodule("scenario_api.emulator.logbook")
    return logbook.data_url_marker(imaging.to_data_url(data, mime))


def uploads(emulator) -> dict[str, str]:
    """Asset name -> logged image marker, for every POST /v1/assets."""
    return {e["body"]["name"]: e["body"]["image"] for e in emulator.requests("POST", "/v1/assets")}


def marker_chars(text: str) -> int:
    return int(text.split()[2])  # "<data URL N chars sha256:...>"


def paid(emulator):
    return [e for e in emulator.requests("POST", "/v1/generate/*") if e.get("query", {}).get("dryRun") is None]


@pytest.mark.parametrize("choice, fmt, quality, pillow_format", LOSSY, ids=[c[0] for c in LOSSY])
async def test_lossy_init_is_uploaded_in_that_format_and_smaller(
    node_env, comfy, pack, caplog, choice, fmt, quality, pillow_format
):
    caplog.set_level(logging.INFO, logger="scenario_controlnet")
    imaging = submodule("scenario_api.imaging")
    init, control = photo(), make_array(192, 128, "edges")
    node = pack.NODE_CLASS_MAPPINGS[I2I]()
    await node.generate(
        **widgets(),
        control_image=image_tensor(control),
        image=image_tensor(init),
        init_image_format=choice,
        unique_id="5",
    )
    sent = uploads(node_env)
    expected = imaging.encode_image(init, format=fmt, quality=quality)
    with Image.open(io.BytesIO(expected.data)) as im:
        assert im.format == pillow_format  # the expected bytes really are that format
    assert sent["comfyui-init"] == marker(expected.data, expected.mime)
    png = imaging.encode_png(init)
    assert marker_chars(sent["comfyui-init"]) < marker_chars(marker(png, "image/png")) / 2
    # the control map stays lossless PNG, byte for byte what it is without the option
    assert sent["comfyui-control"] == marker(imaging.encode_png(control), "image/png")
    [job] = paid(node_env)
    assert job["body"]["image"].startswith("asset_") and job["body"]["image"] != job["body"]["controlImageId"]
    # the size and the encode time are reported: in the log and on the node's status line
    assert len(expected.data) < 100 * 1024  # reported in KiB
    report = f"init image: {choice}, {max(1, round(len(expected.data) / 1024))} KiB, encoded in "
    logged = [r.getMessage() for r in caplog.records if "init image:" in r.getMessage()]
    assert len(logged) == 1 and report in logged[0] and re.search(r"encoded in \d+(\.\d\d)? m?s$", logged[0])
    assert any(report in t for nid, t in comfy.texts if nid == "5")


async def test_default_init_is_the_same_png_as_before(node_env, comfy, pack, caplog):
    caplog.set_level(logging.INFO, logger="scenario_controlnet")
    imaging = submodule("scenario_api.imaging")
    init, control = photo(seed=1), make_array(192, 128, "edges")
    node = pack.NODE_CLASS_MAPPINGS[I2I]()
    await node.generate(**widgets(), control_image=image_tensor(control), image=image_tensor(init), unique_id="6")
    await node.generate(
        **widgets(seed=2),
        control_image=image_tensor(control),
        image=image_tensor(init),
        init_image_format="png (lossless)",
        unique_id="6",
    )
    sent = node_env.requests("POST", "/v1/assets")
    assert len(sent) == 2, "the explicit default is the same image: no second upload"
    by_name = {e["body"]["name"]: e["body"]["image"] for e in sent}
    assert by_name["comfyui-init"] == marker(imaging.encode_png(init, gray_if_equal=True), "image/png")
    assert by_name["comfyui-control"] == marker(imaging.encode_png(control), "image/png")
    logged = [r.getMessage() for r in caplog.records if "init image:" in r.getMessage()]
    assert len(logged) == 2 and all("init image: png (lossless), " in m for m in logged)
    # lossless is the default: the status line carries no encode report
    assert not any("init image:" in t for nid, t in comfy.texts if nid == "6")


async def test_lossy_and_lossless_are_different_uploads_each_cached(node_env, comfy, pack):
    init, control = image_tensor(photo(seed=2)), image_tensor(make_array(192, 128, "shapes"))
    node = pack.NODE_CLASS_MAPPINGS[I2I]()
    await node.generate(**widgets(seed=1), control_image=control, image=init)
    await node.generate(**widgets(seed=2), control_image=control, image=init, init_image_format="webp q90")
    await node.generate(**widgets(seed=3), control_image=control, image=init, init_image_format="webp q90")
    inits = [e for e in node_env.requests("POST", "/v1/assets") if e["body"]["name"] == "comfyui-init"]
    assert len(inits) == 2 and inits[0]["body"]["image"] != inits[1]["body"]["image"]
    init_ids = [e["body"]["image"] for e in paid(node_env)]
    assert len(init_ids) == 3 and init_ids[0] != init_ids[1] and init_ids[1] == init_ids[2]


async def test_one_init_image_for_a_batch_is_encoded_and_uploaded_once(node_env, comfy, pack, caplog):
    caplog.set_level(logging.INFO, logger="scenario_controlnet")
    node = pack.NODE_CLASS_MAPPINGS[I2I]()
    controls = image_tensor(make_array(96, 64, "shapes"), make_array(96, 64, "checker"), make_array(96, 64, "edges"))
    _, job_ids, _ = await node.generate(
        **widgets(), control_image=controls, image=image_tensor(photo(96, 64)), init_image_format="jpeg q75"
    )
    assert len(job_ids.split(",")) == 3
    inits = [e for e in node_env.requests("POST", "/v1/assets") if e["body"]["name"] == "comfyui-init"]
    assert len(inits) == 1
    assert len({e["body"]["image"] for e in paid(node_env)}) == 1
    logged = [r.getMessage() for r in caplog.records if "init image" in r.getMessage()]
    assert len(logged) == 1 and "init image: jpeg q75, " in logged[0]


async def test_two_init_images_are_reported_together(node_env, comfy, pack, caplog):
    caplog.set_level(logging.INFO, logger="scenario_controlnet")
    node = pack.NODE_CLASS_MAPPINGS[I2I]()
    controls = image_tensor(make_array(96, 64, "shapes"), make_array(96, 64, "checker"))
    await node.generate(
        **widgets(),
        control_image=controls,
        image=image_tensor(photo(96, 64, seed=3), photo(96, 64, seed=4)),
        init_image_format="webp q75",
    )
    inits = [e for e in node_env.requests("POST", "/v1/assets") if e["body"]["name"] == "comfyui-init"]
    assert len(inits) == 2
    logged = [r.getMessage() for r in caplog.records if "init image" in r.getMessage()]
    assert len(logged) == 1 and "init images: 2 x webp q75, " in logged[0] and " in all, encoded in " in logged[0]


async def test_image_id_is_used_as_it_is(node_env, comfy, pack, caplog):
    caplog.set_level(logging.INFO, logger="scenario_controlnet")
    imaging = submodule("scenario_api.imaging")
    control = make_array(192, 128, "edges")
    node = pack.NODE_CLASS_MAPPINGS[I2I]()
    await node.generate(
        **widgets(),
        control_image=image_tensor(control),
        image_id="asset_demo_pose",
        init_image_format="jpeg q90",
        unique_id="8",
    )
    sent = node_env.requests("POST", "/v1/assets")
    assert [e["body"]["name"] for e in sent] == ["comfyui-control"]
    assert sent[0]["body"]["image"] == marker(imaging.encode_png(control), "image/png")
    [job] = paid(node_env)
    assert job["body"]["image"] == "asset_demo_pose"
    assert not any("init image" in r.getMessage() for r in caplog.records)
    assert not any("init image" in t for _, t in comfy.texts)


@pytest.mark.parametrize("bad", ["jpeg q50", "gif", "", "PNG (lossless)"])
async def test_a_bad_choice_is_refused_before_any_request(node_env, comfy, pack, bad):
    errors = submodule("scenario_api.errors")
    inputs = submodule("nodes.inputs")
    node = pack.NODE_CLASS_MAPPINGS[I2I]()
    node_env.clear_log()
    with pytest.raises(errors.ValidationError) as info:
        await node.generate(
            **widgets(),
            control_image=image_tensor(make_array(64, 64)),
            image=image_tensor(photo(64, 64)),
            init_image_format=bad,
        )
    text = str(info.value)
    assert info.value.param == "init_image_format" and "init_image_format" in text
    assert all(choice in text for choice in inputs.INIT_IMAGE_FORMATS)
    assert node_env.log() == []  # no model lookup, no upload, no job
    answer = pack.NODE_CLASS_MAPPINGS[I2I].VALIDATE_INPUTS(init_image_format=bad)
    assert isinstance(answer, str) and "init_image_format" in answer and "webp q90" in answer


def test_the_choices_are_valid_encodings_and_last_on_the_node(pack):
    imaging = submodule("scenario_api.imaging")
    inputs = submodule("nodes.inputs")
    optional = pack.NODE_CLASS_MAPPINGS[I2I].INPUT_TYPES()["optional"]
    assert list(optional)[-1] == "init_image_format"
    choices, opts = optional["init_image_format"]
    assert choices == list(inputs.INIT_IMAGE_FORMATS) and opts["default"] == "png (lossless)" == choices[0]
    assert "image_id" in opts["tooltip"] and "control map is always" in opts["tooltip"]
    for label, (fmt, quality) in inputs.INIT_IMAGE_FORMATS.items():
        assert fmt in imaging.IMAGE_FORMATS
        assert (quality is None) == (fmt == "png")
        assert label.startswith(fmt) and (quality is None or label.endswith(f" q{quality}"))  # the label says it
    assert pack.NODE_CLASS_MAPPINGS[I2I].VALIDATE_INPUTS(init_image_format="webp q90") is True
    assert "init_image_format" not in pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"].INPUT_TYPES()["optional"]
