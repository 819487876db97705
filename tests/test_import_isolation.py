"""The protocol layer imports without torch or ComfyUI (it must work in a plain Python)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

SCRIPT = r"""
import importlib.abc, json, sys

BLOCKED = ("torch", "comfy", "server", "folder_paths", "comfy_execution", "nodes")

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked import of {name}")
        return None

sys.meta_path.insert(0, Blocker())
import scenario_api, scenario_api.client, scenario_api.emulator, scenario_api.cli, scenario_api.imaging
import scenario_api.downloads, scenario_api.retry, scenario_api.transport
try:
    import torch  # noqa: F401
    blocked = False
except ImportError:
    blocked = True
print(json.dumps({
    "blocked": blocked,
    "leaked": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
    "version": scenario_api.__version__,
    "client": scenario_api.ScenarioClient.__name__,
}))
"""


def test_scenario_api_imports_with_torch_and_comfy_blocked():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["blocked"] is True  # the blocker really works
    assert result["leaked"] == []
    assert result["version"] == "0.1.0" and result["client"] == "ScenarioClient"


def test_public_surface():
    import scenario_api

    for name in (
        "ScenarioClient",
        "Settings",
        "Credentials",
        "ControlNetRequest",
        "Job",
        "Asset",
        "Model",
        "Quote",
        "Submission",
        "spec",
        "ScenarioError",
        "ValidationError",
        "OutcomeUnknownError",
        "JobCanceledError",
        "InsufficientCreditsError",
        "DownloadError",
        "__version__",
    ):
        assert hasattr(scenario_api, name), name
    assert set(scenario_api.__all__) <= set(dir(scenario_api))
