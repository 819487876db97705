"""The Scenario Jobs panel's routes (nodes/web_jobs.py, nodes/routes.py), through aiohttp's test client.

Recent jobs come from the pack's job ledger when there is one, else from Scenario's own job list; cancel
sends one cancel request; thumbnails are small JPEGs made on the server (signed URLs never reach the
browser). State-changing routes accept only POST with a JSON body; ids are validated before any request.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import make_array, wait_until
from pack_loader import image_tensor, submodule
from PIL import Image

pytest_plugins = ["pack_loader"]

web = pytest.importorskip("aiohttp.web")
test_utils = pytest.importorskip("aiohttp.test_utils")

SLOW = {"queued": 0.05, "warming_up": 0.05, "running": 5.0}
TEST_SECRET = "test-secret-value-123"


@pytest.fixture
async def client(comfy: Any, node_env: Any) -> AsyncIterator[Any]:
    routes = submodule("nodes.routes")
    submodule("nodes.web_jobs").THUMBS.clear()
    table = web.RouteTableDef()
    routes.register_routes(table)
    app = web.Application()
    app.add_routes(table)
    async with test_utils.TestClient(test_utils.TestServer(app)) as http:
        yield http


def widgets(**over: Any) -> dict[str, Any]:
    base = {
        "prompt": "a ship",
        "model_id": "flux.1-dev",
        "modality": "canny",
        "modality_strength": 1.0,
        "num_samples": 1,
        "guidance": 3.5,
        "num_inference_steps": 28,
        "width": 0,
        "height": 0,
        "seed": 3,
    }
    base.update(over)
    return base


async def generate(pack: Any, **over: Any) -> tuple[Any, str, str]:
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    return await node.generate(**widgets(**over), control_image=image_tensor(make_array(64, 64)))


def submits(emulator: Any) -> list[dict[str, Any]]:
    return [e for e in emulator.requests("POST", "/v1/generate/*") if e.get("query", {}).get("dryRun") != "true"]


async def test_without_a_ledger_the_accounts_recent_jobs_are_listed(client: Any, pack: Any, node_env: Any) -> None:
    _, job_id, asset_ids = await generate(pack)
    resp = await client.get("/scenario/jobs?limit=10")
    assert resp.status == 200
    body = await resp.json()
    assert body["source"] in ("scenario", "ledger")
    [row] = [r for r in body["jobs"] if r["job_id"] == job_id]
    assert row["asset_ids"] == asset_ids.split(",") and row["cancelable"] is False
    assert row["thumbnails"] == [{"asset_id": a, "url": f"/scenario/assets/{a}/thumbnail"} for a in row["asset_ids"]]
    assert row["model_id"] == "flux.1-dev" and row["created_at"]
    text = json.dumps(body)
    assert TEST_SECRET not in text and "Signature" not in text and "/cdn/" not in text


async def test_scenario_list_when_no_ledger(client: Any, pack: Any, node_env: Any, monkeypatch: Any) -> None:
    web_jobs = submodule("nodes.web_jobs")
    monkeypatch.setattr(web_jobs, "default_ledger", lambda: None)
    _, job_id, _ = await generate(pack)
    body = await (await client.get("/scenario/jobs")).json()
    assert body["source"] == "scenario" and body["jobs"][0]["job_id"] == job_id
    assert body["jobs"][0]["state"] == "success" and body["jobs"][0]["cost"] > 0
    [call] = [c for c in node_env.requests("GET", "/v1/jobs") if c["query"].get("pageSize")]
    assert call["auth_ok"] is True


async def test_rows_from_the_ledger(client: Any, pack: Any, node_env: Any, comfy: Any, monkeypatch: Any) -> None:
    ledger_mod = pytest.importorskip(f"{submodule('nodes').__name__.rsplit('.', 1)[0]}.scenario_api.ledger")
    web_jobs = submodule("nodes.web_jobs")
    ledger = web_jobs.default_ledger()
    if ledger is None:
        pytest.skip("the nodes run without a job ledger here")
    _, job_id, asset_ids = await generate(pack, seed=11)
    body = await (await client.get("/scenario/jobs")).json()
    assert body["source"] == "ledger"
    [row] = [r for r in body["jobs"] if r["job_id"] == job_id]
    assert row["state"] == ledger_mod.SUCCEEDED and row["asset_ids"] == asset_ids.split(",")
    assert row["prompt"].startswith("a ship") and row["cancelable"] is False


@pytest.mark.parametrize("limit", ["0", "201", "ten", "-3"])
async def test_limit_is_validated(client: Any, node_env: Any, limit: str) -> None:
    resp = await client.get(f"/scenario/jobs?limit={limit}")
    body = await resp.json()
    assert resp.status == 400 and body["field"] == "limit" and "1 to 200" in body["error"]
    assert node_env.log() == []


async def test_cancel_a_running_job(client: Any, pack: Any, node_env: Any) -> None:
    node_env.config(timing=SLOW)
    task = asyncio.ensure_future(generate(pack, seed=21))
    await wait_until(lambda: len(submits(node_env)) == 1)
    job_id = submits(node_env)[0]["job_id"]
    resp = await client.post(f"/scenario/jobs/{job_id}/cancel", json={})
    body = await resp.json()
    assert resp.status == 200 and body["job_id"] == job_id and body["cancel_sent"] is True
    assert [e["body"] for e in node_env.requests("POST", f"/v1/jobs/{job_id}/action")] == [{"action": "cancel"}]
    errors = submodule("scenario_api.errors")
    with pytest.raises(errors.ScenarioError) as info:  # canceled from outside the node: a clear error
        await asyncio.wait_for(task, 10)
    assert job_id in str(info.value)


async def test_cancel_a_finished_job_says_it_cannot(client: Any, pack: Any, node_env: Any) -> None:
    _, job_id, _ = await generate(pack, seed=22)
    body = await (await client.post(f"/scenario/jobs/{job_id}/cancel", json={})).json()
    assert body["cancel_sent"] is False and "cannot be canceled" in body["note"]


async def test_cancel_accepts_only_post_json_and_a_job_id(client: Any, node_env: Any) -> None:
    assert (await client.get("/scenario/jobs/job_abc/cancel")).status == 405
    assert (await client.put("/scenario/jobs/job_abc/cancel", json={})).status == 405
    resp = await client.post("/scenario/jobs/job_abc/cancel")  # a cross-site form cannot send JSON
    assert resp.status == 415
    resp = await client.post("/scenario/jobs/bad..id/cancel", json={})
    body = await resp.json()
    assert resp.status == 400 and body["field"] == "job_id"
    assert node_env.requests("POST", "/v1/jobs/*") == []


async def test_thumbnail_is_a_small_cached_jpeg(client: Any, node_env: Any) -> None:
    resp = await client.get("/scenario/assets/asset_demo_pose/thumbnail")
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    with Image.open(io.BytesIO(await resp.read())) as im:
        assert im.format == "JPEG" and max(im.size) <= 160
    downloads = len(node_env.requests("GET", "/cdn/*"))
    assert (await client.get("/scenario/assets/asset_demo_pose/thumbnail")).status == 200
    assert len(node_env.requests("GET", "/cdn/*")) == downloads  # served from the cache
    resp = await client.get("/scenario/assets/bad..id/thumbnail")
    assert resp.status == 400 and (await resp.json())["field"] == "asset_id"
    resp = await client.get("/scenario/assets/asset_missing/thumbnail")
    assert resp.status == 404
