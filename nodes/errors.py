"""The node boundary: how Stop, cancellations and errors leave a node.

ComfyUI shows an exception's text on the node. Every message starts with
"Scenario: " so users know which service failed. ComfyUI's frontend reacts to
two exact texts ("Unauthorized: Please login first to use this node." and
"Payment Required: ...") by opening the Comfy.org sign-in or top-up dialog,
which is wrong for a Scenario key or Scenario credits: such phrases are
reworded wherever they appear, in our message and in the reason and hint
Scenario sent (both are part of the exception's text).

Stop is task cancellation, in one place: ``async with node_errors():``
watches ComfyUI's Stop flag (every :data:`STOP_POLL_INTERVAL` seconds, read
only, never cleared) and cancels the node's task when it is set. The
``CancelledError`` runs through the node's work like any cancellation (the
client cancels the Scenario jobs it started, shielded and bounded, and a
fan-out cancels and awaits its children), and at this boundary it becomes
ComfyUI's interrupt exception, which ComfyUI reports as an interruption, not
an error. A cancellation that comes from outside (ComfyUI ending the prompt
after another node failed) is re-raised as it is; a stray ``CancelledError``
from an awaited future (not this task's own cancellation) is reported as an
error instead of killing ComfyUI's prompt worker.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from ..scenario_api import ScenarioError
from . import bridge

# How often the boundary looks at ComfyUI's Stop flag.
STOP_POLL_INTERVAL = 0.1

PREFIX = "Scenario: "

# ComfyUI's frontend (1.27.10, app.ts "execution_error" listener) looks for
# "Unauthorized: Please login first to use this node." and "Payment Required:
# Please add credits to your account to use this node." anywhere in an error
# text (case-sensitive ``includes``). Rewording their first words, wherever
# they appear, can never match.
_RESERVED = (
    ("Unauthorized: Please login first", "Unauthorized - please check the Scenario key"),
    ("Payment Required:", "Payment required -"),
)


def defuse(text: str | None) -> str | None:
    """``text`` with ComfyUI's reserved phrases reworded (``None`` stays ``None``)."""
    if not text:
        return text
    for phrase, replacement in _RESERVED:
        text = text.replace(phrase, replacement)
    return text


def prefixed(message: str) -> str:
    """``message`` with the "Scenario: " prefix, and with ComfyUI's reserved phrases defused."""
    if message.startswith(PREFIX):
        text = message
    elif message.startswith("Scenario "):  # "Scenario rejected …" -> "Scenario: rejected …", not said twice
        text = PREFIX + message[len("Scenario ") :]
    else:
        text = PREFIX + message
    return defuse(text) or text


def _prepare(exc: ScenarioError) -> None:
    """Prefix the message and defuse every part ``str(exc)`` shows (Scenario's reason and hint too)."""
    exc.message = prefixed(exc.message)
    exc.reason = defuse(exc.reason)
    exc.hint = defuse(exc.hint)


class node_errors:  # noqa: N801 - used like a function: ``async with node_errors():``
    """Wrap a node's body: prefix :class:`ScenarioError` texts; with ``async with``, Stop -> interrupt.

    ``with node_errors():`` only maps errors (for code that runs no Scenario
    work); ``async with`` also turns ComfyUI's Stop into cancellation of the
    node's task and that cancellation into ComfyUI's interrupt. A Stop already
    pending on entry raises the interrupt at once, before any work.
    """

    def __init__(self) -> None:
        self._task: asyncio.Task[object] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopped = False  # the watcher cancelled the task
        self._stop_undone = False

    # ------------------------------------------------------------------ sync: error mapping only

    def __enter__(self) -> node_errors:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._map(exc)

    # ------------------------------------------------------------------ async: Stop watcher too

    async def __aenter__(self) -> node_errors:
        if bridge.processing_interrupted():
            raise bridge.interrupt_exception()
        self._task = asyncio.current_task()
        if self._task is not None:
            self._watcher = asyncio.ensure_future(self._watch_stop(self._task))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        late = await self._stop_watching()
        if late is not None:
            if exc is None:
                if self._stopped and self._undo_stop():
                    return  # Stop came after the work had finished: keep its results
                raise late
            if self._stopped and not isinstance(exc, asyncio.CancelledError):
                self._undo_stop()
        self._map(exc)

    async def _watch_stop(self, task: asyncio.Task[object]) -> None:
        while True:
            await asyncio.sleep(STOP_POLL_INTERVAL)
            if bridge.processing_interrupted():
                self._stopped = True
                task.cancel()
                return

    async def _stop_watching(self) -> asyncio.CancelledError | None:
        """End the watcher; return a cancellation of this task delivered meanwhile (e.g. the watcher's own)."""
        watcher = self._watcher
        if watcher is None:
            return None
        watcher.cancel()
        late: asyncio.CancelledError | None = None
        first = True
        while first or not watcher.done():
            try:
                if first:
                    first = False
                    await asyncio.sleep(0)  # a cancel the watcher just requested is delivered here
                else:
                    await asyncio.wait({watcher})
            except asyncio.CancelledError as exc:
                late = exc
        return late

    def _undo_stop(self) -> bool:
        """Withdraw the watcher's cancel request; True when no other cancellation of the task is pending."""
        task = self._task
        if task is None:
            return True
        if not self._stop_undone:
            self._stop_undone = True
            return task.uncancel() == 0
        return task.cancelling() == 0

    # ------------------------------------------------------------------ mapping

    def _map(self, exc: BaseException | None) -> None:
        """Raise what replaces ``exc`` at the boundary; return to let ``exc`` go on unchanged."""
        if exc is None:
            return
        if isinstance(exc, ScenarioError):
            _prepare(exc)
            return
        if isinstance(exc, asyncio.CancelledError):
            if self._stopped:
                if self._undo_stop():
                    raise bridge.interrupt_exception() from None
                return  # also cancelled from outside: that cancellation goes on
            # A real cancellation of this task (ComfyUI ending the prompt after another node failed; the
            # client has sent the Scenario cancels by now) is re-raised. Any other CancelledError is a
            # stray one from an awaited future, and letting it escape a node would kill ComfyUI's prompt
            # worker thread.
            task = asyncio.current_task()
            if task is None or task.cancelling():
                return
            raise ScenarioError(
                prefixed("an internal operation was cancelled unexpectedly; queue the prompt again")
            ) from None
