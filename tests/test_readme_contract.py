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
    assert "pytest" in tests


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
