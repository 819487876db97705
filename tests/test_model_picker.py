"""The backend of the frontend's model picker and the model route's custom-model answer (issue 8).

``GET /scenario/models`` (``nodes.web_api.model_list``): ControlNet-capable models,
the account's own by default, cached and paginated; ``GET /scenario/models/{id}``
for a custom model: its declared roles and the widgets that can change the price.
"""

from __future__ import annotations

from typing import Any

import pytest
from pack_loader import comfy, submodule  # noqa: F401 - `comfy` is a fixture

pytest_plugins = ["pack_loader"]


@pytest.fixture
def web_api(env_for_emulator: Any) -> Any:
    module = submodule("nodes.web_api")
    module.clear_model_cache()
    module.clear_model_list_cache()
    yield module
    module.clear_model_list_cache()
    module.clear_model_cache()


async def test_mine_by_default_with_private_loras_and_compositions(web_api: Any, env_for_emulator: Any) -> None:
    answer = await web_api.model_list({})
    rows = {r["model_id"]: r for r in answer["models"]}
    assert answer["scope"] == "mine" and answer["next_cursor"] is None and answer["total"] == len(rows)
    assert rows["model_my-flux-style"] == {
        "model_id": "model_my-flux-style",
        "name": "My house style (Flux LoRA)",
        "type": "flux.1-lora",
        "kind": "lora",
        "privacy": "private",
        "path": "legacy",
        "use": ["model_id", "loras"],
    }
    assert rows["model_my-composition"]["kind"] == "composition"
    assert rows["model_my-zimage-style"]["path"] == "lora_input" and rows["model_my-zimage-style"]["use"] == ["loras"]
    assert "model_my-txt2img-only" not in rows  # no controlnet capability


async def test_public_pages_come_from_one_cached_read(web_api: Any, env_for_emulator: Any) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        answer = await web_api.model_list({"scope": "public", "limit": "4", **({"cursor": cursor} if cursor else {})})
        seen += [r["model_id"] for r in answer["models"]]
        pages += 1
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert pages >= 3 and len(seen) == len(set(seen))
    assert {"model_bfl-flux-1-dev", "model_z-image", "flux.1-dev", "model_emu-flux-composition"} <= set(seen)
    assert "model_demo-custom-txt2img" not in seen
    kinds = [r for r in seen if r.startswith("model_emu-flux-lora")]
    assert kinds and seen.index("model_bfl-flux-1-dev") < seen.index(kinds[0])  # bases first
    assert len(env_for_emulator.requests("GET", "/v1/models")) == 1  # one Scenario read, then the cache
    await web_api.model_list({"scope": "public", "refresh": "1"})
    assert len(env_for_emulator.requests("GET", "/v1/models")) == 2


@pytest.mark.parametrize(
    "query, field",
    [({"scope": "team"}, "scope"), ({"limit": "0"}, "limit"), ({"cursor": "x"}, "cursor"), ({"type": "../x"}, "type")],
)
async def test_bad_queries_are_named(web_api: Any, env_for_emulator: Any, query: dict, field: str) -> None:
    errors = submodule("scenario_api.errors")
    with pytest.raises(errors.ValidationError) as info:
        await web_api.model_list(query)
    assert info.value.param == field
    assert env_for_emulator.requests("GET", "/v1/models") == []


async def test_the_model_route_describes_a_custom_model_by_its_declared_inputs(web_api: Any) -> None:
    z = await web_api.model_info("model_z-image")
    assert z["custom"] is True and z["controlnet"] is True and z["modalities"] == []
    assert z["modality_used"] is False and "modality" in z["declared"]["unused_widgets"]
    assert z["price_widgets"] == ["model_id", "num_samples", "num_inference_steps"]
    assert z["declared"]["price_inputs"] == ["numOutputs", "numInferenceSteps"]
    assert z["declared"]["roles"]["control_scale"] == "controlnetConditioningScale"
    assert z["guidance_range"] == [1.0, 10.0] and z["size_range"]["multiple_of"] == 16
    sketch = await web_api.model_info("model_emu-sketchnet")
    assert sketch["modalities"] == ["edge", "depth", "scribble"] and sketch["size_range"]["multiple_of"] == 64
    legacy = await web_api.model_info("flux.1-dev")
    assert "declared" not in legacy and "price_widgets" not in legacy


async def test_aiohttp_route_for_the_picker(web_api: Any, env_for_emulator: Any) -> None:
    web = pytest.importorskip("aiohttp.web")
    test_utils = pytest.importorskip("aiohttp.test_utils")
    routes = submodule("nodes.routes")
    table = web.RouteTableDef()
    routes.register_routes(table)
    app = web.Application()
    app.add_routes(table)
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        resp = await client.get("/scenario/models", params={"scope": "public", "type": "flux.1-lora", "limit": "2"})
        body = await resp.json()
        assert resp.status == 200 and len(body["models"]) == 2 and body["next_cursor"] == "2"
        assert {r["type"] for r in body["models"]} == {"flux.1-lora"}
        resp = await client.get("/scenario/models", params={"scope": "nope"})
        assert resp.status == 400 and (await resp.json())["field"] == "scope"
        resp = await client.get("/scenario/models/model_z-image")
        assert resp.status == 200 and (await resp.json())["price_widgets"][0] == "model_id"
