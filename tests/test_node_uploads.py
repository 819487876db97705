"""The shared upload cache under cancellation and Stop, and how node errors treat cancellations."""

from __future__ import annotations

import asyncio

import pytest
from helpers import make_array, wait_until
from pack_loader import submodule

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env


def asset_posts(emulator):
    return emulator.requests("POST", "/v1/assets")


def in_flight() -> int:
    return submodule("scenario_api.uploads").UPLOADS.in_flight_count()


async def test_cancelled_owner_hands_the_shared_upload_to_a_waiter(node_env, comfy, pack):
    # The owner's upload is slow on Scenario's side; the owner is cancelled (its fan-out sibling failed)
    # while a second task waits for the same image: the waiter must upload it itself, not inherit the
    # owner's cancellation.
    uploads, errors = submodule("scenario_api.uploads"), submodule("nodes.errors")
    client_mod, creds = submodule("scenario_api.client"), submodule("nodes.credentials")
    node_env.fault(target="POST /v1/assets", kind="slow", delay=1.0, count=1)
    settings = creds.resolve_settings()
    arr = make_array(64, 64, "noise", seed=11)

    async def waiter_node(client):
        with errors.node_errors():  # what a node wraps its body in
            return await uploads.upload_array(client, arr, "waiter")

    async with client_mod.ScenarioClient(settings) as client:
        owner = asyncio.ensure_future(uploads.upload_array(client, arr, "owner"))
        await wait_until(lambda: in_flight() == 1)
        waiter = asyncio.ensure_future(waiter_node(client))
        await asyncio.sleep(0.2)  # the waiter is parked on the owner's in-flight upload
        assert not waiter.done()
        owner.cancel()
        asset_id = await asyncio.wait_for(waiter, 5)
        with pytest.raises(asyncio.CancelledError):
            await owner
        assert owner.cancelled()
        assert asset_id.startswith("asset_")
        assert (await client.get_asset(asset_id)).asset_id == asset_id
    await wait_until(lambda: len(asset_posts(node_env)) == 2)  # the owner's (slow) one, then the waiter's own
    assert sorted(e["body"]["name"] for e in asset_posts(node_env)) == ["owner", "waiter"]
    assert in_flight() == 0
    imaging = submodule("scenario_api.imaging")
    key = uploads.UPLOADS.key(settings, imaging.content_hash(imaging.encode_png(arr, gray_if_equal=True)))
    assert uploads.UPLOADS.cached(key) == asset_id  # the waiter's upload is the one remembered


async def test_owner_stopped_while_waiting_for_a_slot_hands_over_to_a_waiter(node_env, comfy, pack):
    # The owner is cancelled (e.g. its node's fan-out sibling failed) during a 429 "retry in 30 s";
    # a waiter that was not cancelled uploads the image instead.
    uploads = submodule("scenario_api.uploads")
    client_mod, creds = submodule("scenario_api.client"), submodule("nodes.credentials")
    node_env.fault(target="POST /v1/assets", kind="status", status=429, retry_after=30, count=1)
    settings = creds.resolve_settings()
    arr = make_array(64, 64, "noise", seed=12)

    async with client_mod.ScenarioClient(settings) as client:
        owner = asyncio.ensure_future(uploads.upload_array(client, arr, "owner"))
        await wait_until(lambda: len(asset_posts(node_env)) == 1)
        waiter = asyncio.ensure_future(uploads.upload_array(client, arr, "waiter"))
        await asyncio.sleep(0.2)
        owner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(owner, 3)
        assert owner.cancelled()
        asset_id = await asyncio.wait_for(waiter, 3)
    assert asset_id.startswith("asset_")
    assert [e["status"] for e in asset_posts(node_env)] == [429, 200]
    assert asset_posts(node_env)[1]["body"]["name"] == "waiter"


async def test_stray_cancelled_error_is_reported_not_propagated(pack):
    # Python 3.11+: a CancelledError that is not this task's own cancellation must not escape a node.
    errors, api_errors = submodule("nodes.errors"), submodule("scenario_api.errors")
    stray = asyncio.get_running_loop().create_future()
    stray.cancel()
    with pytest.raises(api_errors.ScenarioError) as info:
        with errors.node_errors():
            await stray
    assert str(info.value).startswith("Scenario: ") and "cancelled unexpectedly" in str(info.value)


async def test_real_cancellation_propagates(pack):
    errors = submodule("nodes.errors")
    started = asyncio.Event()

    async def node_body():
        with errors.node_errors():
            started.set()
            await asyncio.sleep(10)

    task = asyncio.ensure_future(node_body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
