"""Every example workflow fits the current node definitions (UI format 0.4, frontend 1.27).

``widgets_values`` are positional: one value per widget input in INPUT_TYPES order (required, then optional;
socket types such as IMAGE have none), plus the control_after_generate mode right after ``seed``. A widget
converted to a linked input keeps its slot in ``widgets_values`` and appears in ``inputs`` with a
``widget`` entry and a link.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from pack_loader import ROOT

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

WORKFLOWS = sorted((ROOT / "example_workflows").glob("*.json"))
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
CONTROL_MODES = ("fixed", "increment", "decrement", "randomize")
STOCK_INPUTS = ("example.png",)  # shipped in ComfyUI's input/ folder (tracked in git)

# Core nodes the examples may use, as defined by ComfyUI 0.3.64: widget specs in order, input and output types.
CORE_NODES = {
    "LoadImage": {
        "widgets": [("image", "COMBO"), ("upload", "IMAGEUPLOAD")],
        "inputs": {},
        "outputs": ["IMAGE", "MASK"],
    },
    "Canny": {
        "widgets": [("low_threshold", "FLOAT", 0.01, 0.99), ("high_threshold", "FLOAT", 0.01, 0.99)],
        "inputs": {"image": "IMAGE"},
        "outputs": ["IMAGE"],
    },
    "SaveImage": {"widgets": [("filename_prefix", "STRING")], "inputs": {"images": "IMAGE"}, "outputs": []},
    "PreviewImage": {"widgets": [], "inputs": {"images": "IMAGE"}, "outputs": []},
}


def is_widget(spec) -> bool:
    kind, opts = spec[0], spec[1] if len(spec) > 1 else {}
    return isinstance(kind, list) or (kind in WIDGET_TYPES and not opts.get("forceInput"))


def widget_slots(cls) -> list[tuple[str, object, dict]]:
    """(name, type, options) per widgets_values slot, the control_after_generate mode included."""
    slots = []
    types = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, spec in types.get(section, {}).items():
            if is_widget(spec):
                opts = spec[1] if len(spec) > 1 else {}
                slots.append((name, spec[0], opts))
                if opts.get("control_after_generate"):
                    slots.append((name + "#control", "CONTROL", {}))
    return slots


def input_type(cls, name):
    types = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        if name in types.get(section, {}):
            kind = types[section][name][0]
            return "COMBO" if isinstance(kind, list) else kind
    return None


def check_value(where, kind, opts, value):
    if kind == "CONTROL":
        assert value in CONTROL_MODES, where
    elif isinstance(kind, list):
        assert value in kind, f"{where}: {value!r} not in the combo options"
    elif kind == "STRING":
        assert isinstance(value, str), where
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), where
    else:
        assert isinstance(value, (int, float)) and not isinstance(value, bool), where
        if kind == "INT":
            assert float(value).is_integer(), where
        assert opts.get("min", float("-inf")) <= value <= opts.get("max", float("inf")), (
            f"{where}: {value} out of range"
        )


def load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def to_api_prompt(workflow, pack) -> dict:
    """The API-format prompt ComfyUI's frontend would queue for this UI workflow."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        inputs = {}
        if node["type"] in pack.NODE_CLASS_MAPPINGS:
            for (name, _, _), value in zip(
                widget_slots(pack.NODE_CLASS_MAPPINGS[node["type"]]), node["widgets_values"], strict=True
            ):
                if not name.endswith("#control"):
                    inputs[name] = value
        else:
            core = CORE_NODES[node["type"]]["widgets"]
            inputs.update({w[0]: v for w, v in zip(core, node["widgets_values"], strict=True) if w[1] != "IMAGEUPLOAD"})
        for entry in node["inputs"]:
            if entry.get("link") is not None:
                _, src, slot, *_ = links[entry["link"]]
                inputs[entry["name"]] = [str(src), slot]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def test_there_are_the_five_examples_and_a_readme():
    names = {p.name for p in WORKFLOWS}
    assert names == {
        "canny_controlnet_generate.json",
        "pose_img2img.json",
        "upload_once_many_generations.json",
        "recover_job.json",
        "lora_custom_generate.json",
    }
    readme = (ROOT / "example_workflows" / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert name in readme


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_fits_the_node_definitions(pack, path):
    wf = load(path)
    assert wf["version"] == 0.4
    nodes = {n["id"]: n for n in wf["nodes"]}
    assert wf["last_node_id"] >= max(nodes) and wf["last_link_id"] >= max((link[0] for link in wf["links"]), default=0)
    for node in wf["nodes"]:
        kind = node["type"]
        assert kind in CORE_NODES or kind in pack.NODE_CLASS_MAPPINGS, f"{path.name}: unknown node type {kind}"
        where = f"{path.name} node {node['id']} ({kind})"
        if kind in pack.NODE_CLASS_MAPPINGS:
            cls = pack.NODE_CLASS_MAPPINGS[kind]
            slots = widget_slots(cls)
            assert len(node["widgets_values"]) == len(slots), (
                f"{where}: {len(node['widgets_values'])} values for {len(slots)} widgets"
            )
            for (name, wkind, opts), value in zip(slots, node["widgets_values"], strict=True):
                check_value(f"{where}.{name}", wkind, opts, value)
            widget_names = {s[0] for s in slots}
            for entry in node["inputs"]:
                assert input_type(cls, entry["name"]) is not None, f"{where}: no input {entry['name']}"
                if "widget" in entry:
                    assert entry["widget"]["name"] in widget_names
            for i, out in enumerate(node["outputs"]):
                assert out["type"] == cls.RETURN_TYPES[i] and out["name"] == cls.RETURN_NAMES[i], where
        else:
            core = CORE_NODES[kind]
            assert len(node["widgets_values"]) == len(core["widgets"]), where
            for spec, value in zip(core["widgets"], node["widgets_values"], strict=True):
                if spec[1] == "FLOAT":
                    assert spec[2] <= value <= spec[3], where
                if spec[0] == "image":
                    assert value in STOCK_INPUTS or (ROOT / "example_workflows" / "input" / value).is_file(), where
            assert [o["type"] for o in node["outputs"]] == core["outputs"], where


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_links_join_existing_slots_with_matching_types(pack, path):
    wf = load(path)
    nodes = {n["id"]: n for n in wf["nodes"]}
    for link_id, src, src_slot, dst, dst_slot, kind in wf["links"]:
        assert src in nodes and dst in nodes, f"link {link_id} joins missing nodes"
        out = nodes[src]["outputs"][src_slot]
        assert out["type"] == kind and link_id in (out["links"] or [])
        entry = nodes[dst]["inputs"][dst_slot]
        assert entry["link"] == link_id
        dst_type = nodes[dst]["type"]
        if dst_type in pack.NODE_CLASS_MAPPINGS:
            expected = input_type(pack.NODE_CLASS_MAPPINGS[dst_type], entry["name"])
        else:
            expected = CORE_NODES[dst_type]["inputs"][entry["name"]]
        assert expected == kind == entry["type"], f"link {link_id}: {kind} into {dst_type}.{entry['name']} ({expected})"
    # every input link points back to a link that exists
    known = {link[0] for link in wf["links"]}
    for node in wf["nodes"]:
        for entry in node["inputs"]:
            assert entry.get("link") is None or entry["link"] in known


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_api_prompt_passes_validation(pack, path):
    """Convert to the API format and run our VALIDATE_INPUTS exactly as ComfyUI would (links -> None)."""
    prompt = to_api_prompt(load(path), pack)
    assert any(n["class_type"] == "SaveImage" for n in prompt.values())
    for node_id, node in prompt.items():
        if node["class_type"] not in pack.NODE_CLASS_MAPPINGS:
            continue
        cls = pack.NODE_CLASS_MAPPINGS[node["class_type"]]
        for name in cls.INPUT_TYPES()["required"]:
            assert name in node["inputs"], f"{path.name} node {node_id}: required input {name} missing"
        validate = getattr(cls, "VALIDATE_INPUTS", None)
        if validate is not None:
            params = inspect.signature(validate).parameters
            args = {k: (None if isinstance(v, list) else v) for k, v in node["inputs"].items() if k in params}
            assert validate(**args) is True, f"{path.name} node {node_id}: {validate(**args)}"
        ins = node["inputs"]
        if "control_image_id" in cls.INPUT_TYPES().get("optional", {}):
            sources = ("control_image" in ins) + bool(ins.get("control_image_id"))
            assert sources == 1, f"{path.name} node {node_id}: give exactly one control source"
        if "image_id" in cls.INPUT_TYPES().get("optional", {}):
            assert ("image" in ins) + bool(ins.get("image_id")) == 1


# --------------------------------------------------------------------------- running them (issue 8)

EXAMPLE_INPUT = ROOT / "example_workflows" / "input"


def _generate_inputs(path: Path, pack, **changes) -> tuple[str, dict]:
    """The generate node's inputs as ComfyUI would pass them, the control map loaded from the example input."""
    from helpers import decode_png
    from pack_loader import image_tensor

    prompt = to_api_prompt(load(path), pack)
    [(kind, inputs)] = [
        (n["class_type"], n["inputs"]) for n in prompt.values() if n["class_type"].startswith("ScenarioControlNet")
    ]
    inputs = dict(inputs)
    edges = decode_png((EXAMPLE_INPUT / "scenario_canny_house.png").read_bytes())
    inputs["control_image"] = image_tensor(edges if edges.ndim == 2 else edges[..., :3])
    inputs.update(changes)
    return kind, inputs


@pytest.mark.parametrize(
    "model_id, path",
    [
        ("flux.1-dev", "/v1/generate/controlnet"),
        ("model_bfl-flux-1-dev", "/v1/generate/custom/model_bfl-flux-1-dev"),
        ("model_z-image", "/v1/generate/custom/model_z-image"),
    ],
)
async def test_the_canny_example_runs_on_three_models_changing_only_model_id(node_env, comfy, pack, model_id, path):
    kind, inputs = _generate_inputs(WORKFLOWS[0].parent / "canny_controlnet_generate.json", pack, model_id=model_id)
    images, job_id, _ = await pack.NODE_CLASS_MAPPINGS[kind]().generate(unique_id="3", **inputs)
    [post] = node_env.requests("POST", "/v1/generate/*")
    assert post["path"] == path and job_id.startswith("job_") and images.shape[0] == 1
    body = post["body"]
    assert body.get("prompt") == inputs["prompt"] and body["seed"] == 12345
    if model_id == "model_z-image":
        assert body["controlnetConditioningScale"] == 0.8 and len(body["controlImage"]) == 1
    elif model_id == "model_bfl-flux-1-dev":
        assert body["controlModality"] == "canny" and body["controlStrength"] == 0.8
    else:
        assert body["modality"] == "canny:0.8" and body["numSamples"] == 1


async def test_the_lora_example_runs(node_env, comfy, pack):
    kind, inputs = _generate_inputs(WORKFLOWS[0].parent / "lora_custom_generate.json", pack)
    assert inputs["model_id"] == "model_bfl-flux-1-dev" and inputs["loras"]
    await pack.NODE_CLASS_MAPPINGS[kind]().generate(unique_id="3", **inputs)
    [post] = node_env.requests("POST", "/v1/generate/*")
    assert post["body"]["loras"] == ["model_2taP2G9BJL1Rw8t81NwiXGZA"] and post["body"]["lorasScale"] == [0.8]
