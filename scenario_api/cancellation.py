"""The one way work stops: ``asyncio.CancelledError``, and clean-up that a second one cannot cut short.

A caller that wants to stop (ComfyUI's Stop, a fan-out sibling's failure,
``asyncio.run`` ending a prompt, Ctrl+C in the CLI) cancels the task doing the
work. The client has no other stop signal. What the client must still do once
cancelled (send a remote cancel for a running job; find and cancel the job a
submit may have created) runs through :func:`finish_shielded`: in a task of
its own, awaited under a shield, with further cancellations of the caller
absorbed until the clean-up ends or its time bound runs out. The caller then
re-raises its ``CancelledError``; nothing is swallowed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Finished", "finish_shielded"]

T = TypeVar("T")

# After the bound, the clean-up task is cancelled and given this long to wind down.
_WIND_DOWN = 1.0


@dataclass(frozen=True)
class Finished(Generic[T]):
    """How a shielded clean-up ended.

    ``result`` on success; ``error`` when it raised; ``timed_out`` when the
    bound ran out first (it was then cancelled); ``absorbed`` counts the
    cancellations of the caller that arrived meanwhile and were held back.
    """

    result: T | None = None
    error: BaseException | None = None
    timed_out: bool = False
    absorbed: int = 0

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.error is None


async def finish_shielded(work: Awaitable[T], *, bound: float) -> Finished[T]:
    """Run ``work`` in its own task and wait for it (at most ``bound`` seconds), whatever cancels the caller.

    Never raises: the outcome is returned. A caller that was cancelled while
    waiting (``absorbed > 0``) must raise ``CancelledError`` afterwards; a caller
    already handling one simply re-raises it.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    deadline = loop.time() + max(0.0, bound)
    absorbed = 0
    while not task.done():
        left = deadline - loop.time()
        if left <= 0:
            break
        try:
            await asyncio.wait({task}, timeout=left)
        except asyncio.CancelledError:
            absorbed += 1
    if not task.done():
        task.cancel()
        wind_down = loop.time() + _WIND_DOWN
        while not task.done() and loop.time() < wind_down:
            try:
                await asyncio.wait({task}, timeout=max(0.0, wind_down - loop.time()))
            except asyncio.CancelledError:
                absorbed += 1
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: its outcome no longer matters
        return Finished(timed_out=True, absorbed=absorbed)
    if task.cancelled():
        return Finished(error=asyncio.CancelledError(), absorbed=absorbed)
    error = task.exception()
    if error is not None:
        return Finished(error=error, absorbed=absorbed)
    return Finished(result=task.result(), absorbed=absorbed)
