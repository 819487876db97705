"""The pack loads the way ComfyUI loads it, without touching ComfyUI modules at import."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from pack_loader import ROOT

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

NODE_IDS = (
    "ScenarioControlNetGenerate",
    "ScenarioImg2ImgControlNet",
    "ScenarioPollJob",
    "ScenarioFetchAsset",
    "ScenarioUploadAsset",
)

# ComfyUI 0.3.64 (nodes.py::load_custom_node): the module name is the pack's absolute path with "." -> "_x_",
# and ComfyUI's own top-level "nodes" module is already imported.
LOADER = textwrap.dedent(
    """
    import importlib.util, json, sys, types
    root = sys.argv[1]
    sys.path[:0] = sys.argv[2:]  # extra import paths (a decoy "server" module in one test)
    comfy_nodes = types.ModuleType("nodes")
    comfy_nodes.MARKER = "comfyui"
    sys.modules["nodes"] = comfy_nodes
    name = (root.rstrip("/") + "/custom_nodes/scenario-controlnet").replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, root + "/__init__.py", submodule_search_locations=[root])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    print(json.dumps({
        "mappings": sorted(mod.NODE_CLASS_MAPPINGS),
        "display": mod.NODE_DISPLAY_NAME_MAPPINGS,
        "web": mod.WEB_DIRECTORY,
        "all": sorted(mod.__all__),
        "nodes_untouched": sys.modules["nodes"] is comfy_nodes,
        "comfy_modules": sorted(
            m for m in sys.modules if m.split(".")[0] in ("comfy", "server", "folder_paths", "comfy_execution")
        ),
        "top_level_scenario_api": "scenario_api" in sys.modules,
    }))
    """
)


def test_loads_like_comfyui_in_a_clean_interpreter():
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, str(ROOT)], check=False, capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["mappings"] == sorted(NODE_IDS)
    assert set(info["display"]) == set(NODE_IDS)
    assert info["web"] == "./web"
    assert info["all"] == ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
    assert info["nodes_untouched"] is True  # ComfyUI's own "nodes" module is neither replaced nor imported from
    assert info["comfy_modules"] == []  # ComfyUI is only reached lazily, at run time
    assert info["top_level_scenario_api"] is False  # relative imports only


def test_an_unrelated_server_module_is_never_imported(tmp_path):
    # Outside ComfyUI, any module called "server" on sys.path must stay untouched: the pack only uses
    # the one ComfyUI imported before loading custom nodes (the route registration runs at import).
    (tmp_path / "server.py").write_text("raise SystemExit('the decoy server module was imported')\n")
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, str(ROOT), str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["comfy_modules"] == [] and len(info["mappings"]) == len(NODE_IDS)


def test_web_directory_and_help_pages_exist(pack):
    web = (ROOT / pack.WEB_DIRECTORY).resolve()
    assert web.is_dir()
    for node_id in NODE_IDS:
        page = web / "docs" / f"{node_id}.md"
        assert page.is_file(), f"missing help page {page}"
        text = page.read_text(encoding="utf-8")
        assert text.startswith("# ") and pack.NODE_DISPLAY_NAME_MAPPINGS[node_id] in text.splitlines()[0]
        for section in ("## Inputs", "## Outputs", "## Errors"):
            assert section in text, f"{page.name} lacks {section}"


def test_no_module_imports_comfyui_outside_the_bridge():
    """Only nodes/bridge.py may name ComfyUI modules, and only inside functions."""
    offenders = []
    for path in sorted((ROOT / "nodes").glob("*.py")):
        if path.name == "bridge.py":
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and any(
                f" {m}" in stripped or f"{m}." in stripped.split(" ")[1]
                for m in ("comfy", "server", "folder_paths", "execution")
            ):
                offenders.append(f"{path.name}: {stripped}")
    assert offenders == []
    bridge = (ROOT / "nodes" / "bridge.py").read_text(encoding="utf-8")
    top_level = [ln for ln in bridge.splitlines() if ln.startswith(("import ", "from "))]
    assert not any(m in ln for ln in top_level for m in ("comfy", "server", "folder_paths"))


def test_root_init_is_light():
    text = (ROOT / "__init__.py").read_text(encoding="utf-8")
    code = [ln for ln in text.splitlines() if ln.startswith(("import ", "from "))]
    assert code == ["from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS"]
    assert not Path(ROOT / "nodes" / "__init__.py").read_text(encoding="utf-8").count("import nodes")
