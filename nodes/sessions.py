"""One Scenario client per prompt: every Scenario node of a prompt shares its connection pool and model look-ups.

ComfyUI runs each prompt in a fresh event loop (``asyncio.run``), and the
async nodes of one prompt run concurrently in it. A ``ScenarioClient`` (its
httpx pools) belongs to the loop that opened it, so:

* clients are kept per running loop (a weak map: a finished prompt's loop
  takes its clients with it) and per account (base URL + key id + project),
  never handed to another loop;
* the first node of a prompt opens the client; the others reuse it, with
  its model cache (one ``GET /models/{id}`` per model and prompt);
* it is closed inside its own loop when that loop shuts down: an async
  generator holds it open, and ``asyncio.run`` finalises every async
  generator (``shutdown_asyncgens``) before it closes the loop. A loop that
  is closed without that step drops the client with the loop, unclosed (its
  sockets close with the process or the garbage collector).

Nodes use ``async with shared_client(settings) as client:``; leaving the
block does not close the shared client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

from ..scenario_api import ScenarioClient, Settings
from .job_ledger import client_options
from .jobs import poll_policy

__all__ = ["shared_client", "open_clients"]

_lock = threading.Lock()
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, ...], _Entry]]
_clients = weakref.WeakKeyDictionary()


class _Entry:
    def __init__(self, ready: asyncio.Future[ScenarioClient]) -> None:
        self.ready = ready  # the client, once opened (the first node of the prompt opens it, the others wait)
        self.keeper: Any = None  # the async generator that closes the client when the loop shuts down


def _key(settings: Settings) -> tuple[str, str, str]:
    """Base URL, a digest of the whole key pair (a changed secret gets a new client; no secret kept), project."""
    creds = settings.credentials
    pair = hashlib.sha256(creds.authorization_header().encode()).hexdigest() if creds is not None else ""
    return (settings.base_url, pair, settings.project_id or "")


async def _keep_open(client: ScenarioClient, key: tuple[str, ...]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        loop = asyncio.get_running_loop()
        with _lock:
            entries = _clients.get(loop)
            if entries is not None:
                entries.pop(key, None)
        await client.aclose()


async def _client(settings: Settings) -> ScenarioClient:
    loop = asyncio.get_running_loop()
    options = client_options()  # the job ledger and reuse setting: a reopened ledger gets its own client
    key = (*_key(settings), str(id(options.get("ledger"))), str(bool(options.get("reuse"))))
    with _lock:
        entries = _clients.setdefault(loop, {})
        entry = entries.get(key)
        opener = entry is None
        if entry is None:
            entry = entries[key] = _Entry(loop.create_future())
    if not opener:
        return await asyncio.shield(entry.ready)
    try:
        client = ScenarioClient(settings, poll_policy=poll_policy(), **options)
        await client.__aenter__()
        keeper = _keep_open(client, key)
        await keeper.__anext__()  # started: the loop now finalises it at shutdown
    except BaseException as exc:
        with _lock:
            if entries.get(key) is entry:
                del entries[key]
        if not entry.ready.done():
            entry.ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError("client not opened"))
            entry.ready.exception()  # retrieved: each waiter re-raises it
        raise
    entry.keeper = keeper
    entry.ready.set_result(client)
    return client


@contextlib.asynccontextmanager
async def shared_client(settings: Settings) -> AsyncIterator[ScenarioClient]:
    """The prompt's client for ``settings``' account (opened on first use, closed when the prompt's loop ends)."""
    yield await _client(settings)


def open_clients() -> int:
    """How many shared clients are open, over all event loops (tests, diagnostics)."""
    with _lock:
        return sum(len(v) for v in _clients.values())
