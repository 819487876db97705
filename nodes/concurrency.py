"""Generic concurrency for a node's fan-out: run several awaitables, fail as one, leave nothing running.

* :func:`gather_or_cancel` runs awaitables concurrently. On the first failure
  the others are cancelled and awaited (each one's client then sends its
  Scenario cancel, shielded and bounded), and that first failure is raised.
* If the task running it is cancelled (Stop, or ComfyUI ending the prompt),
  the children are cancelled and awaited too before the cancellation goes
  on: a child must never outlive the node, because ComfyUI closes the
  prompt's event loop right after. Further cancellations during that wait
  are held back; the children's own clean-up is bounded.
* :func:`bounded` is the same with at most ``limit`` running at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

__all__ = ["bounded", "gather_or_cancel"]

T = TypeVar("T")


async def _cancel_and_wait(tasks: Sequence[asyncio.Future[Any]]) -> int:
    """Cancel every unfinished task and wait until all are done; returns how many cancellations were held back."""
    for t in tasks:
        if not t.done():
            t.cancel()
    absorbed = 0
    pending = [t for t in tasks if not t.done()]
    while pending:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            absorbed += 1
        pending = [t for t in pending if not t.done()]
    for t in tasks:  # mark every outcome retrieved
        if not t.cancelled():
            t.exception()
    return absorbed


async def gather_or_cancel(aws: Iterable[Awaitable[T]]) -> list[T]:
    """Run awaitables concurrently; on the first failure cancel the rest, wait for them, raise that failure.

    Results keep the input order. A child's ``CancelledError`` (its own task
    cancelled by someone else) counts as a failure only when no real error
    came first.
    """
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        await _cancel_and_wait(tasks)
        raise
    failed = [t for t in tasks if t.done() and (t.cancelled() or t.exception() is not None)]
    if not failed:
        return [t.result() for t in tasks]
    first = next((t.exception() for t in failed if not t.cancelled()), None)
    if await _cancel_and_wait(tasks):
        raise asyncio.CancelledError()  # this task was cancelled while its children wound down
    if first is None:
        raise asyncio.CancelledError()
    raise first


async def bounded(limit: int, items: Sequence[Any], fn: Callable[[int, Any], Awaitable[T]]) -> list[T]:
    """``fn(i, item)`` for every item, at most ``limit`` at a time, results in order."""
    sem = asyncio.Semaphore(limit)

    async def one(i: int, item: Any) -> T:
        async with sem:
            return await fn(i, item)

    return await gather_or_cancel(one(i, item) for i, item in enumerate(items))
