"""What the published pack holds: the Comfy Registry archive (.comfyignore) and the CP1252 rule for .py files.

`comfy node publish` archives the git-tracked files minus the `.comfyignore` matches, plus the
`[tool.comfy].includes` folders. The registry's checks (the `comfy-test` package's first level) flag a
`.py` file with a character outside CP1252, so every tracked `.py` file, tests included, must encode.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Left out of the archive: development and CI files.
DEV_ONLY = ["tests/conftest.py", "tests/js/scenario.test.mjs", "bench/__main__.py", "scripts/check.sh", ".ci/run"]
DEV_ONLY += ["requirements-dev.txt", ".gitignore"]
# Needed where the pack is installed: the loader entry point, both packages, the frontend, the metadata.
RUNTIME = ["__init__.py", "nodes/__init__.py", "nodes/bridge.py", "scenario_api/__init__.py", "scenario_api/spec.py"]
RUNTIME += ["web/scenario.js", "web/scenario_core.js", "locales/en/settings.json", "pyproject.toml", "LICENSE"]
RUNTIME += ["README.md", "requirements.txt"]


def _git(*args: str) -> list[str]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the registry archive is built from git-tracked files")
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line for line in out.splitlines() if line]


def tracked_files() -> list[str]:
    return _git("ls-files", "--cached")


def archived_files() -> set[str]:
    """The tracked files `comfy node publish` keeps: minus .comfyignore, plus [tool.comfy].includes."""
    ignored = set(_git("ls-files", "--cached", "--ignored", "--exclude-from=.comfyignore"))
    includes = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["comfy"]["includes"]
    kept = {f for f in tracked_files() if f not in ignored}
    return kept | {f for f in tracked_files() if any(f.startswith(folder.rstrip("/") + "/") for folder in includes)}


def test_comfyignore_keeps_tests_ci_bench_and_scripts_out_of_the_archive() -> None:
    archive = archived_files()
    tracked = set(tracked_files())
    for path in DEV_ONLY:
        assert path in tracked, f"{path} is not tracked: update this test"
        assert path not in archive, f"{path} would be published"
    for folder in ("tests/", "bench/", "scripts/", ".ci/"):
        assert not [f for f in archive if f.startswith(folder)], folder


def test_the_archive_still_holds_everything_the_pack_needs() -> None:
    archive = archived_files()
    for path in RUNTIME:
        assert path in archive, f"{path} would be missing from the published pack"
    for folder in ("nodes/", "scenario_api/", "web/", "locales/", "example_workflows/"):
        tracked = {f for f in tracked_files() if f.startswith(folder)}
        assert tracked <= archive, sorted(tracked - archive)


def test_every_tracked_python_file_is_cp1252_encodable() -> None:
    python_files = [f for f in tracked_files() if f.endswith(".py")]
    assert len(python_files) > 50 and "scenario_api/spec.py" in python_files
    problems = []
    for name in python_files:
        for number, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), 1):
            outside = [c for c in line if not _cp1252(c)]
            if outside:
                problems.append(f"{name}:{number}: {''.join(outside)!r} is outside CP1252 (write an escape)")
    assert not problems, "\n".join(problems)


def _cp1252(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True
