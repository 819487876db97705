"""Example workflows as the template browser and Nodes 2.0 show them: a thumbnail each, no overlapping nodes.

Nodes only grow downwards when they show results (image previews) or advanced inputs, and the frontend grows a
node to fit its widgets, so the examples keep every node on its own column or leave room below it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "example_workflows").glob("*.json"))
TITLE = 30  # px above pos: the node's title bar
MIN_WIDTH = 430  # 1.27's Nodes 2.0 renders every node at least about this wide
GROWTH = 400  # px a generate node may grow below its saved size (previews, advanced inputs)
GROWING = {"ScenarioControlNetGenerate", "ScenarioImg2ImgControlNet", "SaveImage", "ScenarioFetchAsset", "PreviewImage"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_has_a_thumbnail(path: Path) -> None:
    thumb = path.with_suffix(".jpg")
    assert thumb.is_file(), f"{thumb.name} is missing (the template browser shows a blank card)"
    with Image.open(thumb) as im:
        assert im.format == "JPEG" and min(im.size) >= 256


def boxes(path: Path) -> list[tuple[int, str, float, float, float, float]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for n in data["nodes"]:
        x, y = n["pos"]
        w, h = n["size"]
        grow = GROWTH if n["type"] in GROWING else 0
        out.append((n["id"], n["type"], x, y - TITLE, x + max(w, MIN_WIDTH), y + h + grow))
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_no_two_nodes_overlap_even_after_they_grow(path: Path) -> None:
    found = boxes(path)
    for i, a in enumerate(found):
        for b in found[i + 1 :]:
            apart = a[4] <= b[2] or b[4] <= a[2] or a[5] <= b[3] or b[5] <= a[3]
            assert apart, f"{path.name}: node {a[0]} ({a[1]}) overlaps node {b[0]} ({b[1]})"
