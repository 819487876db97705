"""The node contract lock: what saved workflows and API prompts depend on.

tests/node_contract.json is committed and must only ever be APPENDED to: new
nodes, new optional inputs at the end of a node's optional inputs, new combo
options. Renaming a node id, reordering, retyping or removing an input shifts
every saved ``widgets_values`` array or breaks API prompts, so it needs a new
node class instead (keep the old one with ``DEPRECATED = True``).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from pack_loader import submodule

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

LOCK = Path(__file__).with_name("node_contract.json")


def describe_input(name, spec):
    kind = spec[0] if isinstance(spec, (tuple, list)) else spec
    opts = spec[1] if isinstance(spec, (tuple, list)) and len(spec) > 1 else {}
    out = {"name": name}
    if isinstance(kind, (list, tuple)):
        out["type"], out["options"] = "COMBO", list(kind)
    else:
        out["type"] = kind
    if isinstance(opts, dict) and opts.get("control_after_generate"):
        out["control_after_generate"] = True
    return out


def describe(pack):
    nodes = {}
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        types = cls.INPUT_TYPES()
        nodes[node_id] = {
            "display_name": pack.NODE_DISPLAY_NAME_MAPPINGS[node_id],
            "required": [describe_input(k, v) for k, v in types.get("required", {}).items()],
            "optional": [describe_input(k, v) for k, v in types.get("optional", {}).items()],
            "hidden": [{"name": k, "type": v} for k, v in types.get("hidden", {}).items()],
            "return_types": list(cls.RETURN_TYPES),
            "return_names": list(cls.RETURN_NAMES),
        }
    return nodes


@pytest.fixture
def lock():
    return json.loads(LOCK.read_text(encoding="utf-8"))["nodes"]


def test_every_locked_node_still_exists_with_its_name(pack, lock):
    for node_id, locked in lock.items():
        assert node_id in pack.NODE_CLASS_MAPPINGS, f"node id {node_id} was removed or renamed"
        assert pack.NODE_DISPLAY_NAME_MAPPINGS[node_id] == locked["display_name"]


def test_locked_inputs_are_an_unchanged_prefix(pack, lock):
    current = describe(pack)
    for node_id, locked in lock.items():
        now = current[node_id]
        for section in ("required", "optional", "hidden"):
            old = locked[section]
            new = now[section]
            assert [i["name"] for i in new[: len(old)]] == [i["name"] for i in old], (
                f"{node_id}.{section}: inputs renamed or reordered; only appending is allowed"
            )
            for before, after in zip(old, new[: len(old)], strict=True):
                assert after["type"] == before["type"], f"{node_id}.{before['name']} changed type"
                assert after.get("control_after_generate") == before.get("control_after_generate")
                if before["type"] == "COMBO":
                    missing = set(before["options"]) - set(after["options"])
                    assert not missing, f"{node_id}.{before['name']} lost combo options {missing}"
        assert now["required"][len(locked["required"]) :] == [], f"{node_id}: new inputs must be optional"


def test_outputs_are_unchanged(pack, lock):
    for node_id, locked in lock.items():
        cls = pack.NODE_CLASS_MAPPINGS[node_id]
        assert list(cls.RETURN_TYPES) == locked["return_types"]
        assert list(cls.RETURN_NAMES) == locked["return_names"]


def test_lock_matches_exactly(pack, lock):
    """Any addition must be recorded in the lock (by appending) in the same change."""
    assert describe(pack) == lock


def test_brief_contract(pack):
    """The published table: ids, display names and outputs in order."""
    expected = {
        "ScenarioControlNetGenerate": (
            "Scenario ControlNet Generate",
            ("IMAGE", "STRING", "STRING"),
            ("images", "job_id", "asset_ids"),
        ),
        "ScenarioImg2ImgControlNet": (
            "Scenario Img2Img ControlNet",
            ("IMAGE", "STRING", "STRING"),
            ("images", "job_id", "asset_ids"),
        ),
        "ScenarioPollJob": ("Scenario Poll Job", ("STRING", "STRING"), ("asset_ids", "status")),
        "ScenarioFetchAsset": ("Scenario Fetch Asset", ("IMAGE", "MASK"), ("images", "masks")),
        "ScenarioUploadAsset": ("Scenario Upload Asset", ("STRING",), ("asset_ids",)),
    }
    assert set(pack.NODE_CLASS_MAPPINGS) == set(expected)
    for node_id, (name, types, names) in expected.items():
        cls = pack.NODE_CLASS_MAPPINGS[node_id]
        assert pack.NODE_DISPLAY_NAME_MAPPINGS[node_id] == name
        assert tuple(cls.RETURN_TYPES) == types and tuple(cls.RETURN_NAMES) == names


def test_node_declarations_follow_the_pack_rules(pack):
    spec = submodule("scenario_api.spec")
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        types = cls.INPUT_TYPES()
        assert cls.CATEGORY == "Scenario" and cls.DESCRIPTION
        assert not getattr(cls, "API_NODE", False), "never mark a third-party node as a Comfy partner API node"
        assert types["hidden"] == {"unique_id": "UNIQUE_ID"}
        assert inspect.iscoroutinefunction(getattr(cls, cls.FUNCTION))
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES) and all(cls.OUTPUT_TOOLTIPS)
        for section in ("required", "optional"):
            for name, spec_ in types.get(section, {}).items():
                assert spec_[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
        # credentials are never widgets
        names = " ".join(list(types.get("required", {})) + list(types.get("optional", {}))).lower()
        assert "key" not in names and "secret" not in names and "token" not in names
    for gen in ("ScenarioControlNetGenerate", "ScenarioImg2ImgControlNet"):
        cls = pack.NODE_CLASS_MAPPINGS[gen]
        assert not hasattr(cls, "IS_CHANGED"), "a changing IS_CHANGED would re-bill on every queue"
        req = cls.INPUT_TYPES()["required"]
        assert req["modality"][0] == list(spec.ALL_MODALITY_NAMES) and req["modality"][1]["default"] == "canny"
        assert req["seed"][1]["max"] == 2**31 - 1 and req["seed"][1]["control_after_generate"] is True
        assert req["num_samples"][1]["max"] == 128 and req["model_id"][1]["default"] == "flux.1-dev"
        assert (req["width"][1]["min"], req["width"][1]["max"], req["width"][1]["step"]) == (0, 2048, 8)
        assert req["guidance"][1]["default"] == 3.5 and req["num_inference_steps"][1]["default"] == 30
    i2i = pack.NODE_CLASS_MAPPINGS["ScenarioImg2ImgControlNet"].INPUT_TYPES()
    assert list(i2i["required"])[-1] == "strength" and i2i["required"]["strength"][1]["default"] == 0.75
    fetch = pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"].INPUT_TYPES()["required"]["asset_ids"][1]
    assert fetch["forceInput"] is False
    poll = pack.NODE_CLASS_MAPPINGS["ScenarioPollJob"].INPUT_TYPES()["required"]
    assert poll["timeout_seconds"][1]["default"] == 600
