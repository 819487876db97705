"""Truthful quotes: when the size follows the control map, the quote prices the map's real size.

The browser sends the map's pixel size when it can tell it (a LoadImage feeding the node: ``map_size``), else
the last run's output size (``run_size``); the server derives the priced size as the node derives it, and
answers which size it priced and why (``size_basis``). Checked against the emulator's price formula.
"""

from __future__ import annotations

from typing import Any

import pytest
from pack_loader import submodule

pytest_plugins = ["pack_loader"]


@pytest.fixture
def web_api(env_for_emulator: Any) -> Any:
    module = submodule("nodes.web_api")
    module.clear_model_cache()
    yield module
    module.clear_model_cache()


def widgets(**over: Any) -> dict[str, Any]:
    base = {
        "prompt": "a house",
        "model_id": "flux.1-dev",
        "modality": "canny",
        "modality_strength": 1.0,
        "num_samples": 1,
        "guidance": 3.5,
        "num_inference_steps": 28,
        "width": 0,
        "height": 0,
        "seed": 1,
        "img2img": False,
        "batch": 1,
    }
    base.update(over)
    return base


def priced(emulator: Any) -> tuple[int, int]:
    (call,) = [c for c in emulator.requests("POST", "/v1/generate/*") if c["query"].get("dryRun") == "true"]
    return call["body"]["width"], call["body"]["height"]


async def test_the_maps_size_is_priced(web_api: Any, emulator: Any) -> None:
    answer = await web_api.quote(widgets(map_size=[768, 768]))
    assert priced(emulator) == (768, 768)
    assert answer["priced_size"] == [768, 768] and answer["size_basis"] == "map"
    assert answer["per_job"] == pytest.approx(round(5 * 28 / 28 * 768 * 768 / 1024**2, 2))  # 2.81 CU, not 1.25
    assert emulator.requests("POST", "/v1/assets") == []  # a quote never uploads


async def test_the_map_size_is_fitted_like_the_node_fits_it(web_api: Any, emulator: Any) -> None:
    plan = submodule("nodes.plan")
    answer = await web_api.quote(widgets(model_id="stable-diffusion-xl-base-1.0", map_size=[3000, 1000]))
    assert answer["priced_size"] == list(plan.output_size(0, 0, (3000, 1000), "sd-xl"))
    emulator.clear_log()
    answer = await web_api.quote(widgets(width=1024, map_size=[768, 512]))  # height follows the map's aspect
    assert priced(emulator) == (1024, 680) and answer["size_basis"] == "map"


async def test_the_last_runs_size_when_the_map_is_unknown(web_api: Any, emulator: Any) -> None:
    answer = await web_api.quote(widgets(run_size=[768, 512]))
    assert priced(emulator) == (768, 512) and answer["size_basis"] == "last_run"


async def test_otherwise_it_says_plainly_it_is_the_default_size(web_api: Any, emulator: Any) -> None:
    answer = await web_api.quote(widgets())
    assert answer["priced_size"] == [512, 512] and answer["size_basis"] == "default"
    answer = await web_api.quote(widgets(width=640, height=640, map_size=[768, 768]))
    assert "priced_size" not in answer and "size_basis" not in answer  # explicit sizes are priced as given


@pytest.mark.parametrize("bad", [[0, 512], [512], "768x768", [True, 5], [512.5, 512], [20000, 512]])
async def test_malformed_hints_are_refused_naming_the_field(web_api: Any, emulator: Any, bad: Any) -> None:
    routes = submodule("nodes.routes")
    with pytest.raises(Exception) as info:
        await web_api.quote(widgets(map_size=bad))
    status, body = routes.error_payload(info.value)
    assert status == 400 and body["field"] == "map_size" and "map_size" in body["error"]
    assert emulator.log() == []
