"""The CLI and the job ledger: kill -9 mid-poll then ``resume``, batches that pay once, ``--no-reuse``,
``jobs --local [--pending]``. Real subprocesses against the session emulator over loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import make_png

from scenario_api.ledger import Ledger

ROOT = Path(__file__).resolve().parents[1]
TEST_KEY, TEST_SECRET = "test-key", "test-secret-value-123"


def env_for(emulator, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIO_")}
    env.update(
        PYTHONPATH=str(ROOT),
        SCENARIO_API_URL=emulator.url,
        SCENARIO_API_KEY=TEST_KEY,
        SCENARIO_API_SECRET=TEST_SECRET,
        SCENARIO_STATE_DIR=str(state),
    )
    return env


def cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scenario_api", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def paid(emulator) -> list[str]:
    return [e["job_id"] for e in emulator.requests("POST", "/v1/generate/*") if e.get("job_id")]


def no_credentials_to_the_file_host(emulator) -> bool:
    files = emulator.requests("GET", "/cdn/*")
    return bool(files) and not any(e["auth_header_present"] for e in files)


def ledger_states(state: Path) -> list[str]:
    with Ledger(state / "ledger.sqlite3") as lg:
        return sorted(r.state for r in lg.recent(limit=100) if r.kind == "submit")


@pytest.fixture
def maps(tmp_path: Path) -> Path:
    folder = tmp_path / "maps"
    folder.mkdir()
    for name, pattern in (("house", "edges"), ("tree", "shapes"), ("road", "checker")):
        (folder / f"{name}.png").write_bytes(make_png(64, 64, pattern))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_kill_9_mid_poll_then_resume_delivers_with_no_second_job(emulator, tmp_path, maps):
    emulator.config(timing={"queued": 0.05, "warming_up": 0.05, "running": 2.5})
    state = tmp_path / "state"
    env = env_for(emulator, state)
    args = ["generate", "--control", str(maps / "house.png"), "--prompt", "kill me", "--seed", "4"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenario_api", *args, "--poll-interval", "0.05", "--out", str(tmp_path / "lost")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("job: "), line
        job_id = line.split(": ", 1)[1].strip()
        deadline = time.monotonic() + 20
        while not emulator.requests("GET", f"/v1/jobs/{job_id}") and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # mid-poll: no clean-up, no cancel
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    assert emulator.requests("POST", "/v1/jobs/*/action") == []
    with Ledger(state / "ledger.sqlite3") as lg:
        [pending] = lg.pending()
        assert pending.job_id == job_id and pending.state == "accepted" and pending.owner_alive() is False

    listing = cli(["jobs", "--local", "--pending"], env, tmp_path)
    assert listing.returncode == 0 and job_id in listing.stdout and "accepted" in listing.stdout
    assert "kill me" in listing.stdout

    out = tmp_path / "recovered"
    resumed = cli(["resume", "--out", str(out), "--poll-interval", "0.05"], env, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"job: {job_id} (resumed)" in resumed.stdout
    assert [p.name for p in out.iterdir()] == [f"{job_id}_0.png"]
    assert paid(emulator) == [job_id]  # no second job
    with Ledger(state / "ledger.sqlite3") as lg:
        assert lg.pending() == []
        [record] = lg.recent()
        assert record.state == "succeeded" and len(lg.receipts(record.id)) == 1
    assert cli(["resume"], env, tmp_path).stdout.strip() == "nothing to resume"
    assert no_credentials_to_the_file_host(emulator)


def test_a_batch_names_outputs_after_inputs_and_a_rerun_pays_nothing(env_for_emulator, tmp_path, maps, capsys):
    from scenario_api import cli as cli_module

    emulator = env_for_emulator
    out = tmp_path / "out"
    args = ["generate", "--control", str(maps), "--prompt", "a village", "--out", str(out), "--poll-interval", "0.05"]
    assert cli_module.main(args) == 0
    assert "batch: 3 of 3 map(s) done" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["house_0.png", "road_0.png", "tree_0.png"]
    assert len(paid(emulator)) == 3
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert cli_module.main(args) == 0
    assert capsys.readouterr().out.count("reused") == 3
    assert len(paid(emulator)) == 3  # re-running pays for nothing already done
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert ledger_states(Path(os.environ["SCENARIO_STATE_DIR"])) == ["succeeded"] * 3
    assert no_credentials_to_the_file_host(emulator) and emulator.requests("POST", "/v1/jobs/*/action") == []


def test_a_batch_interrupted_mid_way_is_finished_by_running_it_again(emulator, tmp_path, maps):
    emulator.config(timing={"queued": 0.05, "warming_up": 0.05, "running": 1.5})
    env = env_for(emulator, tmp_path / "state")
    out = tmp_path / "out"
    args = [
        "generate",
        "--control",
        str(maps / "*.png"),
        "--prompt",
        "a harbour",
        "--out",
        str(out),
        "--poll-interval",
        "0.05",
        "--concurrency",
        "3",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenario_api", *args], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while len(paid(emulator)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert len(paid(emulator)) == 3
    again = cli(args, env, tmp_path)
    assert again.returncode == 0, again.stdout
    assert len(paid(emulator)) == 3  # the three jobs of the killed run were picked up, none paid again
    assert sorted(p.name for p in out.iterdir()) == ["house_0.png", "road_0.png", "tree_0.png"]
    assert ledger_states(tmp_path / "state") == ["succeeded"] * 3
    assert emulator.requests("POST", "/v1/jobs/*/action") == []  # a killed process cancels nothing
    assert no_credentials_to_the_file_host(emulator)


def test_no_reuse_pays_exactly_once_more(env_for_emulator, tmp_path, maps, capsys):
    from scenario_api import cli as cli_module

    emulator = env_for_emulator
    args = [
        "generate",
        "--control",
        str(maps / "tree.png"),
        "--prompt",
        "pine",
        "--seed",
        "8",
        "--poll-interval",
        "0.05",
    ]
    assert cli_module.main([*args, "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert cli_module.main([*args, "--out", str(tmp_path / "b")]) == 0
    assert "reused" in capsys.readouterr().out
    assert len(paid(emulator)) == 1  # same request and seed: 0 new submits
    assert cli_module.main([*args, "--out", str(tmp_path / "c"), "--no-reuse"]) == 0
    assert "reused" not in capsys.readouterr().out
    assert len(paid(emulator)) == 2  # --no-reuse: exactly 1
    assert ledger_states(Path(os.environ["SCENARIO_STATE_DIR"])) == ["succeeded", "succeeded"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(p.name for p in (tmp_path / "a").iterdir())


def test_jobs_local_needs_no_network_or_credentials(tmp_path, monkeypatch, capsys):
    from scenario_api import cli as cli_module

    for name in ("SCENARIO_API_KEY", "SCENARIO_API_SECRET", "SCENARIO_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCENARIO_STATE_DIR", str(tmp_path / "empty"))
    assert cli_module.main(["jobs", "--local"]) == 0
    assert "the ledger is empty" in capsys.readouterr().out
    assert cli_module.main(["jobs", "--local", "--pending"]) == 0
    assert "no unfinished jobs" in capsys.readouterr().out


def test_a_bad_control_in_a_batch_fails_before_anything_is_paid(env_for_emulator, tmp_path, maps, capsys):
    from scenario_api import cli as cli_module

    (maps / "broken.png").write_bytes(b"\x89PNG not really")
    assert cli_module.main(["generate", "--control", str(maps), "--prompt", "x"]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert paid(env_for_emulator) == []
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert cli_module.main(["generate", "--control", str(empty), "--prompt", "x"]) == 2
    assert "holds no PNG" in capsys.readouterr().err
    assert cli_module.main(["generate", "--control", str(tmp_path / "no-match-*.png"), "--prompt", "x"]) == 2
    assert "no PNG, JPEG or WebP image matches" in capsys.readouterr().err


def six_maps(tmp_path: Path) -> Path:
    folder = tmp_path / "six"
    folder.mkdir()
    for i in range(6):
        (folder / f"map{i}.png").write_bytes(make_png(48, 48, "noise", seed=40 + i))
    return folder


def test_a_cli_batch_runs_every_map_at_once_when_the_account_allows(emulator, tmp_path):
    running = 1.5
    emulator.config(timing={"queued": 0.0, "warming_up": 0.0, "running": running}, parallel_inferences=8)
    env = env_for(emulator, tmp_path / "state")
    args = ["generate", "--control", str(six_maps(tmp_path)), "--prompt", "six at once", "--out", str(tmp_path / "o")]
    done = cli([*args, "--poll-interval", "0.1"], env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    submits = [e for e in emulator.requests("POST", "/v1/generate/*") if e.get("job_id")]
    assert len(submits) == 6 and all(e["status"] == 200 for e in submits)
    # all six were sent before the first could have finished: no fixed cap of 4 in front of the account's limit
    assert max(e["time"] for e in submits) - min(e["time"] for e in submits) < running
    assert len(emulator.requests("GET", "/v1/teams/*/limits")) == 1


def test_a_cli_batch_above_the_account_limit_waits_its_turn_without_429(emulator, tmp_path):
    emulator.config(timing={"queued": 0.0, "warming_up": 0.0, "running": 0.4}, parallel_inferences=2)
    env = env_for(emulator, tmp_path / "state")
    args = ["generate", "--control", str(six_maps(tmp_path)), "--prompt", "two by two", "--out", str(tmp_path / "o")]
    done = cli([*args, "--poll-interval", "0.05"], env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [e["status"] for e in emulator.requests("POST", "/v1/generate/*")] == [200] * 6  # the limit was read
    assert len(list((tmp_path / "o").iterdir())) == 6
    bad = cli([*args, "--concurrency", "0"], env, tmp_path)
    assert bad.returncode != 0 and "--concurrency must be from 1 to 64 (got 0)" in bad.stdout + bad.stderr


def test_timings_come_from_the_jobs_own_dates_when_no_poll_saw_it_running(env_for_emulator, tmp_path, maps, capsys):
    import re

    from scenario_api import cli as cli_module

    env_for_emulator.config(timing={"queued": 0.3, "warming_up": 0.0, "running": 1.2})
    args = ["generate", "--control", str(maps / "road.png"), "--prompt", "a lane", "--seed", "3"]
    # one poll, long after the end: the progress line never sees the job running
    assert cli_module.main([*args, "--poll-interval", "3", "--out", str(tmp_path / "o")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("timings:"))
    queued, running = (float(v) for v in re.findall(r"(?:queued|running) ([\d.]+) s", line))
    assert 1.0 <= running <= 2.0 and queued < 1.0, line  # the emulator's 0.3 s queue and 1.2 s run, not 3 s / 0 s
