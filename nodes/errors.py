"""How errors leave a node: prefixed, actionable, and never ComfyUI's reserved texts.

ComfyUI shows an exception's text on the node. Every message starts with
"Scenario: " so users know which service failed. ComfyUI's frontend reacts to
two exact texts ("Unauthorized: Please login first to use this node." and
"Payment Required: ...") by opening the Comfy.org sign-in or top-up dialog,
which is wrong for a Scenario key or Scenario credits: such phrases are
reworded wherever they appear, in our message and in the reason and hint
Scenario sent (both are part of the exception's text). A Stop
(``JobCanceledError(by_caller=True)``, with or without a job id: it may fire
while a submit waits for a Scenario slot) becomes ComfyUI's interrupt
exception, which ComfyUI reports as an interruption, not an error; so does a
free read stopped by the same check (``CancelRequested``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from ..scenario_api.errors import JobCanceledError, ScenarioError
from ..scenario_api.retry import CancelRequested
from . import bridge

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


@contextlib.contextmanager
def node_errors() -> Iterator[None]:
    """Wrap a node's body: prefix :class:`ScenarioError` texts, turn our Stop into an interrupt."""
    try:
        yield
    except CancelRequested:
        # A free read (model, asset, job lookup) stopped on the node's Stop check: not an error.
        raise bridge.interrupt_exception() from None
    except JobCanceledError as exc:
        if exc.by_caller:
            raise bridge.interrupt_exception() from None
        _prepare(exc)
        raise
    except ScenarioError as exc:
        _prepare(exc)
        raise
    except asyncio.CancelledError:
        # Re-raise a real cancellation of this task (ComfyUI ending the prompt after another node failed;
        # the client has sent the Scenario cancel by now). Any other CancelledError is a stray one from an
        # awaited future, and letting it escape a node would kill ComfyUI's prompt worker thread.
        #
        # Python 3.10 has no Task.cancelling(), and no other public record that cancel() was called on the
        # running task (task.cancelled() is only true once it has finished), so there every CancelledError
        # is treated as a real cancellation and re-raised: hiding a real one would be worse. The known source
        # of stray ones, a shared upload whose owner was cancelled, no longer hands its cancellation to the
        # waiters (see uploads.upload_once).
        task = asyncio.current_task()
        cancelling = getattr(task, "cancelling", None)
        if task is None or cancelling is None or cancelling():
            raise
        raise ScenarioError(
            prefixed("an internal operation was cancelled unexpectedly; queue the prompt again")
        ) from None
