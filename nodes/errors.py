"""How errors leave a node: prefixed, actionable, and never ComfyUI's reserved texts.

ComfyUI shows an exception's text on the node. Every message starts with
"Scenario: " so users know which service failed. ComfyUI's frontend reacts to
two exact texts ("Unauthorized: Please login first to use this node." and
"Payment Required: ...") by opening the Comfy.org sign-in or top-up dialog,
which is wrong for a Scenario key or Scenario credits: such texts never leave
this module. A Stop (``JobCanceledError(by_caller=True)``) becomes ComfyUI's
interrupt exception, which ComfyUI reports as an interruption, not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from ..scenario_api.errors import JobCanceledError, ScenarioError
from . import bridge

PREFIX = "Scenario: "
_RESERVED = ("Unauthorized: Please login first", "Payment Required")


def prefixed(message: str) -> str:
    """``message`` with the "Scenario: " prefix, and with ComfyUI's reserved phrases defused."""
    if message.startswith(PREFIX):
        text = message
    elif message.startswith("Scenario "):  # "Scenario rejected …" -> "Scenario: rejected …", not said twice
        text = PREFIX + message[len("Scenario ") :]
    else:
        text = PREFIX + message
    for phrase in _RESERVED:
        text = text.replace(phrase, phrase.replace(":", " -"))
    return text


@contextlib.contextmanager
def node_errors() -> Iterator[None]:
    """Wrap a node's body: prefix :class:`ScenarioError` texts, turn our Stop into an interrupt."""
    try:
        yield
    except JobCanceledError as exc:
        if exc.by_caller:
            raise bridge.interrupt_exception() from None
        exc.message = prefixed(exc.message)
        raise
    except ScenarioError as exc:
        exc.message = prefixed(exc.message)
        raise
    except asyncio.CancelledError:
        # Re-raise a real cancellation of this task (ComfyUI ending the prompt after another node failed;
        # the client has sent the Scenario cancel by now). Any other CancelledError is a stray one from an
        # awaited future, and letting it escape a node would kill ComfyUI's prompt worker thread.
        task = asyncio.current_task()
        cancelling = getattr(task, "cancelling", None)  # Python 3.11+; on 3.10 assume a real cancellation
        if task is None or cancelling is None or cancelling():
            raise
        raise ScenarioError(prefixed("an internal operation was cancelled unexpectedly; queue the prompt again")) from None
