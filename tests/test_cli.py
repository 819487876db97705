"""``python -m scenario_api``: end-to-end runs, exit codes, recovery commands and Ctrl-C."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TEST_KEY, TEST_SECRET
from helpers import make_png

from scenario_api import cli
from scenario_api.config import MISSING_CREDENTIALS_HELP
from scenario_api.models import Job


def _clean_env(**extra: str) -> dict[str, str]:
    # SCENARIO_STATE_DIR stays: the CLI's job ledger goes to the test's folder, never the home directory.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIO_") or k == "SCENARIO_STATE_DIR"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _env_for(emulator) -> dict[str, str]:
    return _clean_env(SCENARIO_API_URL=emulator.url, SCENARIO_API_KEY=TEST_KEY, SCENARIO_API_SECRET=TEST_SECRET)


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 40) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scenario_api", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def control(tmp_path: Path) -> Path:
    path = tmp_path / "map.png"
    path.write_bytes(make_png(200, 120, "edges", mode="RGB"))
    return path


def test_emulator_run_writes_pngs_and_prints_job_and_cost(tmp_path, control):
    out = tmp_path / "results"
    proc = _run(
        [
            "generate",
            "--emulator",
            "--control",
            str(control),
            "--prompt",
            "a robot",
            "--num-samples",
            "2",
            "--out",
            str(out),
            "--seed",
            "5",
        ],
        _clean_env(),
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    job_id = next(line.split(": ", 1)[1] for line in lines if line.startswith("job: "))
    assert job_id.startswith("job_")
    assert any(line.startswith("cost: ") and line.endswith(" CU") for line in lines)
    assert any(line.startswith("timings: queued") and "download" in line for line in lines)
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"{job_id}_0.png", f"{job_id}_1.png"]
    from PIL import Image

    with Image.open(out / files[0]) as im:
        # 200x120 control map fitted for Flux: multiples of 8, aspect kept
        assert im.size == (200, 120)
    assert "done" in proc.stderr  # progress lines (plain mode: not a TTY)


def test_bad_modality_exits_2_naming_the_field(tmp_path, control, emulator):
    env = _env_for(emulator)
    proc = _run(["generate", "--control", str(control), "--prompt", "x", "--modality", "canny:2"], env, tmp_path)
    assert proc.returncode == 2
    assert "modality" in proc.stderr and "(0, 1]" in proc.stderr
    assert emulator.requests("POST", "/v1/generate/*") == []


def test_missing_credentials_exit_2_with_help_and_send_nothing(tmp_path, control, emulator):
    env = _clean_env(SCENARIO_API_URL=emulator.url)
    proc = _run(["generate", "--control", str(control), "--prompt", "x"], env, tmp_path)
    assert proc.returncode == 2
    assert MISSING_CREDENTIALS_HELP in proc.stderr
    assert emulator.log() == []


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_cancels_the_remote_job(tmp_path, control, emulator):
    emulator.config(timing={"running": 20.0})
    env = _env_for(emulator)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scenario_api",
            "generate",
            "--control",
            str(control),
            "--prompt",
            "long one",
            "--poll-interval",
            "0.1",
            "--out",
            str(tmp_path / "o"),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal user has it: a test run started in the background without job control (nohup,
        # `cmd &` in a script) ignores SIGINT, and a child inherits that.
        preexec_fn=_default_sigint,
    )
    try:
        job_id = None
        deadline = time.monotonic() + 20
        while job_id is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("job: "):
                job_id = line.strip().split(": ", 1)[1]
        assert job_id, "the CLI never printed the job id"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert f"cancel job {job_id}" in err
    actions = emulator.requests("POST", f"/v1/jobs/{job_id}/action")
    assert len(actions) == 1 and actions[0]["body"] == {"action": "cancel"}


# --------------------------------------------------------------------------- in-process


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["generate", "--control", "x.png"])  # --prompt missing
    assert info.value.code == 2
    assert "--prompt" in capsys.readouterr().err


def test_unreadable_control_exits_2(tmp_path, capsys, env_for_emulator):
    bad = tmp_path / "not-image.png"
    bad.write_bytes(b"nope")
    assert cli.main(["generate", "--control", str(bad), "--prompt", "x"]) == 2
    assert "--control" in capsys.readouterr().err
    assert cli.main(["generate", "--control", str(tmp_path / "missing.png"), "--prompt", "x"]) == 2
    assert "neither an existing image file nor an asset id" in capsys.readouterr().err
    assert env_for_emulator.log() == []


def test_family_rule_exits_2(env_for_emulator, control, capsys):
    assert cli.main(["generate", "--control", str(control), "--prompt", "x", "--modality", "seg"]) == 2
    assert "for Flux models one of" in capsys.readouterr().err
    assert env_for_emulator.requests("POST", "/v1/generate/*") == []


def test_quote_only_prints_the_price_and_creates_no_job(env_for_emulator, control, capsys):
    assert cli.main(["generate", "--control", str(control), "--prompt", "x", "--quote-only"]) == 0
    assert capsys.readouterr().out.startswith("price: ")
    assert (
        cli.main(["quote", "--control", "asset_demo_canny", "--prompt", "x", "--width", "1024", "--height", "1024"])
        == 0
    )
    assert "CU" in capsys.readouterr().out
    assert [e["status"] for e in env_for_emulator.requests("POST", "/v1/generate/*")] == [269, 269]


def test_img2img_with_asset_ids_and_fetch_and_jobs(env_for_emulator, tmp_path, capsys):
    out = tmp_path / "o"
    code = cli.main(
        [
            "generate",
            "--control",
            "asset_demo_pose",
            "--init-image",
            "asset_demo_canny",
            "--strength",
            "0.5",
            "--modality",
            "pose",
            "--prompt",
            "dancer",
            "--out",
            str(out),
            "--poll-interval",
            "0.05",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    job_id = next(line.split(": ")[1] for line in printed.splitlines() if line.startswith("job: "))
    (paid,) = env_for_emulator.requests("POST", "/v1/generate/controlnet-img2img")
    assert paid["body"]["image"] == "asset_demo_canny" and paid["body"]["controlImageId"] == "asset_demo_pose"
    assert paid["body"]["width"] == 512  # no file to derive a size from

    again = tmp_path / "again"
    assert cli.main(["fetch", job_id, "--out", str(again), "--poll-interval", "0.05"]) == 0
    assert (again / f"{job_id}_0.png").read_bytes() == (out / f"{job_id}_0.png").read_bytes()
    capsys.readouterr()
    assert cli.main(["jobs"]) == 0
    listing = capsys.readouterr().out
    assert job_id in listing and "success" in listing and "dancer" in listing
    assert cli.main(["fetch", "../etc"]) == 2


def test_progress_line_modes():
    plain = io.StringIO()
    line = cli.ProgressLine(plain, tty=False)
    for status, progress in [
        ("queued", 0),
        ("in-progress", 0.31),
        ("in-progress", 0.33),
        ("in-progress", 0.52),
        ("success", 1.0),
    ]:
        line(Job(job_id="job_1", status=status, progress=progress))
    assert plain.getvalue().splitlines() == [
        "job_1: queued",
        "job_1: generating 31%",
        "job_1: generating 52%",
        "job_1: done",
    ]
    tty = io.StringIO()
    line = cli.ProgressLine(tty, tty=True)
    line(Job(job_id="job_1", status="in-progress", progress=0.5))
    line(Job(job_id="job_1", status="success", progress=1.0))
    assert tty.getvalue().count("\r") == 2 and tty.getvalue().endswith("\n")
    assert "queued" in line.timings(1.0) and "download 1.0 s" in line.timings(1.0)


def test_init_image_file_can_be_sent_as_opt_in_lossy_jpeg(env_for_emulator, tmp_path, capsys):
    photo = tmp_path / "photo.png"
    photo.write_bytes(make_png(96, 64, "gradient", mode="RGB"))
    args = ["generate", "--control", "asset_demo_pose", "--init-image", str(photo), "--modality", "pose"]
    args += ["--prompt", "dancer", "--out", str(tmp_path / "o"), "--poll-interval", "0.05"]
    assert cli.main(args + ["--init-format", "jpeg", "--init-quality", "80"]) == 0
    assert "sent as JPEG q80" in capsys.readouterr().out
    (paid,) = env_for_emulator.requests("POST", "/v1/generate/controlnet-img2img")
    from scenario_api.emulator.logbook import data_url_marker
    from scenario_api.imaging import decode_image, encode_image, to_data_url

    jpeg = encode_image(decode_image(photo.read_bytes()).rgb, format="jpeg", quality=80)
    assert paid["body"]["image"] == data_url_marker(to_data_url(jpeg.data, "image/jpeg"))  # sent as that JPEG
    assert cli.main(args + ["--init-format", "webp", "--init-quality", "0"]) == 2  # bad quality: nothing sent
    assert len(env_for_emulator.requests("POST", "/v1/generate/controlnet-img2img")) == 1
