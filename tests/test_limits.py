"""The per-account parallel-jobs limiter: FIFO, learns its limit, shared across event loops and threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from scenario_api.limits import AccountLimiter, forget_limiters, limiter_for


async def test_at_most_limit_slots_and_fifo_order():
    limiter = AccountLimiter(2)
    order: list[int] = []
    running = 0
    peak = 0

    async def job(i: int) -> None:
        nonlocal running, peak
        async with limiter.slot():
            order.append(i)
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(job(i) for i in range(7)))
    assert peak == 2 and order == list(range(7)) and limiter.active == 0


async def test_unknown_limit_lets_everyone_in_until_a_limit_is_learned():
    limiter = AccountLimiter()
    for _ in range(5):
        await limiter.acquire()
    assert limiter.active == 5 and limiter.limit is None
    limiter.learn(3, "429")
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    assert not waiter.done() and limiter.waiting == 1
    for _ in range(2):
        limiter.release()
    await asyncio.sleep(0)
    assert not waiter.done()  # 3 active: still at the limit
    limiter.release()
    await asyncio.wait_for(waiter, 1)
    assert limiter.active == 3 and limiter.source == "429"
    limiter.learn(0, "bogus")  # ignored
    assert limiter.limit == 3


async def test_a_cancelled_waiter_gives_its_turn_away():
    limiter = AccountLimiter(1)
    await limiter.acquire()
    first = asyncio.ensure_future(limiter.acquire())
    second = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    limiter.release()
    await asyncio.wait_for(second, 1)
    assert limiter.active == 1 and limiter.waiting == 0


def test_one_limiter_serves_several_event_loops_in_threads():
    forget_limiters()
    limiter = limiter_for("http://emulator/v1|key", "inference")
    assert limiter_for("http://emulator/v1|key", "inference") is limiter
    assert limiter_for("http://emulator/v1|key", "custom") is not limiter
    limiter.learn(2, "team limits")
    lock = threading.Lock()
    running, peak, done = 0, 0, 0

    async def prompt() -> None:  # each thread runs its own asyncio.run, as each ComfyUI prompt does
        nonlocal running, peak, done
        for _ in range(3):
            async with limiter.slot():
                with lock:
                    running += 1
                    peak = max(peak, running)
                await asyncio.sleep(0.005)
                with lock:
                    running -= 1
                    done += 1

    threads = [threading.Thread(target=asyncio.run, args=(prompt(),)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert done == 12 and peak <= 2 and limiter.active == 0
    forget_limiters()
