"""Paid submits (scenario_api.submission): a Stop at any point of a submit never leaves a paid job running unseen.

Client-level, against the emulator over real HTTP; the node-level cases are in test_node_interrupt.py.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from helpers import fast_client, wait_until

from scenario_api import ControlNetRequest
from scenario_api.ledger import Ledger

SUBMIT = "POST /v1/generate/*"
PAID = {"dryRun": None}


def request(seed: int) -> ControlNetRequest:
    return ControlNetRequest(
        prompt="a harbour at dusk",
        control_image_id="asset_demo_canny",
        modality="canny",
        seed=seed,
        width=256,
        height=256,
    )


def jobs_created(emulator) -> list[str]:
    return [e["job_id"] for e in emulator.requests("POST", "/v1/generate/*") if e.get("job_id")]


def cancels(emulator) -> list[str]:
    return [
        e["path"].split("/")[3]
        for e in emulator.requests("POST", "/v1/jobs/*/action")
        if e["body"] == {"action": "cancel"}
    ]


def slow_claims(monkeypatch: pytest.MonkeyPatch, ledger: Ledger) -> threading.Event:
    """Make the ledger's job claims slow (a busy file); the event is set when one starts."""
    real = ledger.claim
    claiming = threading.Event()

    def slow_claim(*args, **kw):
        claiming.set()
        time.sleep(0.5)
        return real(*args, **kw)

    monkeypatch.setattr(ledger, "claim", slow_claim)
    return claiming


async def test_stop_while_an_adopted_job_is_being_claimed_cancels_it(emulator, settings, tmp_path, monkeypatch):
    # The reply was lost after Scenario accepted; reconciliation found the job and is claiming it when Stop lands.
    emulator.config(timing={"queued": 0.05, "warming_up": 0.05, "running": 5.0})
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        claiming = slow_claims(monkeypatch, ledger)
        async with fast_client(settings, ledger=ledger) as client:
            emulator.fault(target=SUBMIT, query=PAID, kind="disconnect_after_accept")
            task = asyncio.ensure_future(client.submit(request(41)))
            await wait_until(claiming.is_set, timeout=10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        [job_id] = jobs_created(emulator)
        assert cancels(emulator) == [job_id]
        record = ledger.by_job(job_id)
        assert record is not None and record.state == "canceled"


async def test_stop_while_the_direct_reply_is_being_claimed_cancels_the_job(emulator, settings, tmp_path, monkeypatch):
    emulator.config(timing={"queued": 0.05, "warming_up": 0.05, "running": 5.0})
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        claiming = slow_claims(monkeypatch, ledger)
        async with fast_client(settings, ledger=ledger) as client:
            task = asyncio.ensure_future(client.submit(request(42)))
            await wait_until(claiming.is_set, timeout=10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        [job_id] = jobs_created(emulator)
        assert cancels(emulator) == [job_id]
        record = ledger.by_job(job_id)
        assert record is not None and record.state == "canceled"


async def test_stop_in_generates_on_submitted_callback_cancels_the_job(emulator, settings):
    emulator.config(timing={"queued": 0.05, "warming_up": 0.05, "running": 5.0})
    submitted = asyncio.Event()

    async def on_submitted(_submission) -> None:
        submitted.set()
        await asyncio.sleep(30)  # a slow UI update

    async with fast_client(settings) as client:
        task = asyncio.ensure_future(client.generate(request(43), on_submitted=on_submitted))
        await asyncio.wait_for(submitted.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.limiter().active == 0  # the job's slot was given back
    [job_id] = jobs_created(emulator)
    assert cancels(emulator) == [job_id]
