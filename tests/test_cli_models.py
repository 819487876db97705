"""CLI for issue 8: ``--lora``, ``--input`` and ``python -m scenario_api models``."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_png

from scenario_api import cli


@pytest.fixture
def control(tmp_path: Path) -> Path:
    path = tmp_path / "map.png"
    path.write_bytes(make_png(200, 120, "edges", mode="RGB"))
    return path


def test_loras_and_inputs_reach_a_z_image_body(env_for_emulator, control, tmp_path, capsys):
    args = ["generate", "--control", str(control), "--prompt", "neon city", "--model", "model_z-image"]
    args += ["--lora", "model_my-zimage-style:0.7", "--lora", "model_emu-zimage-lora-neon", "--input", "guidance=4"]
    args += [
        "--input",
        "negativePrompt=blurry, dark",
        "--num-samples",
        "1",
        "--seed",
        "5",
        "--out",
        str(tmp_path / "o"),
    ]
    assert cli.main([*args, "--poll-interval", "0.05"]) == 0
    [post] = env_for_emulator.requests("POST", "/v1/generate/*")
    body = post["body"]
    assert post["path"] == "/v1/generate/custom/model_z-image"
    assert body["loras"] == ["model_my-zimage-style", "model_emu-zimage-lora-neon"] and body["lorasScale"] == [0.7, 1.0]
    assert body["guidance"] == 4 and body["negativePrompt"] == "blurry, dark" and body["numOutputs"] == 1
    assert (body["width"], body["height"]) == (208, 128) and len(body["controlImage"]) == 1  # fitted, step 16
    assert "job: job_" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--input", "aspectRatio=1:1"], ["aspectRatio", "controlModality"]),
        (["--lora", "model_emu-flux-lora-ink:2.5"], ["lorasScale", "in [0, 2]"]),
        (["--lora", "model_emu-flux-lora-ink:x"], ["--lora"]),
        (["--input", "nonsense"], ["--input", "NAME=VALUE"]),
        (["--model", "flux.1-dev", "--lora", "model_emu-flux-lora-ink"], ["legacy"]),
    ],
)
def test_bad_loras_and_inputs_exit_2_and_send_nothing(env_for_emulator, control, capsys, extra, words):
    args = ["generate", "--control", str(control), "--prompt", "x", "--model", "model_bfl-flux-1-dev", *extra]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err, (word, err)
    assert env_for_emulator.requests("POST", "/v1/generate/*") == []
    assert env_for_emulator.requests("POST", "/v1/assets") == []


def test_models_lists_private_by_default_and_filters(env_for_emulator, capsys):
    assert cli.main(["models"]) == 0
    mine = capsys.readouterr().out
    assert "model_my-flux-style" in mine and "model_bfl-flux-1-dev" not in mine
    assert cli.main(["models", "--public", "--capability", "controlnet"]) == 0
    public = capsys.readouterr().out
    for mid in ("model_bfl-flux-1-dev", "model_z-image", "model_emu-flux-composition", "flux.1-dev"):
        assert mid in public
    assert "model_demo-custom-txt2img" not in public  # no controlnet capability
    assert cli.main(["models", "--public", "--type", "flux.1-lora"]) == 0
    loras = capsys.readouterr().out.splitlines()
    assert loras and all("flux.1-lora" in line for line in loras)
    assert len(env_for_emulator.requests("GET", "/v1/models")) == 3
