"""Upload each distinct image to Scenario once per ComfyUI process.

Generate nodes never inline control or init images in the paid request:
each image is PNG-encoded, hashed, uploaded with ``POST /assets`` once, and
the request carries the asset id. This keeps request bodies small (no
payload-size failures on big maps) and makes re-running a workflow, or two
nodes sharing a map, cost no second upload.

Cache key: ``(API base URL, sha256 of the credentials, sha256 of the PNG bytes)`` -
so switching Scenario account or endpoint (e.g. to the emulator) never reuses
an asset id from elsewhere. Only asset ids are kept (no secrets, no pixels).

Concurrency: identical uploads started together (a batch holding the same
image twice, two nodes running concurrently) share one in-flight upload, so
the image is sent once. If the caller doing that upload is cancelled or
stopped, the upload is handed over: the next waiter uploads itself (it never
inherits someone else's cancellation). In-flight tasks belong to the event loop that started
them (ComfyUI runs each prompt in a fresh loop), hence the per-loop map.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Awaitable, Callable

import numpy as np

from ..scenario_api import imaging
from ..scenario_api.config import Settings
from ..scenario_api.errors import JobCanceledError, NotFoundError
from ..scenario_api.retry import CancelRequested, run_cancellable

CancelCheck = Callable[[], bool]

CacheKey = tuple[str, str, str]

_lock = threading.Lock()
_asset_ids: dict[CacheKey, str] = {}
_in_flight: dict[tuple[int, CacheKey], asyncio.Future[str]] = {}


def cache_key(settings: Settings, png_hash: str) -> CacheKey:
    """Key of one image for one account on one API endpoint (no secret inside)."""
    key_id = ""
    if settings.credentials is not None:
        # authorization_header() covers key and secret; hashing it identifies the account without storing either.
        key_id = hashlib.sha256(settings.credentials.authorization_header().encode()).hexdigest()
    return (settings.base_url, key_id, png_hash)


def cached(key: CacheKey) -> str | None:
    with _lock:
        return _asset_ids.get(key)


def forget(asset_id: str) -> None:
    """Drop an asset id that Scenario no longer knows (deleted, other project)."""
    with _lock:
        for k in [k for k, v in _asset_ids.items() if v == asset_id]:
            del _asset_ids[k]


def clear() -> None:
    """Empty the cache (tests; never needed in normal use)."""
    with _lock:
        _asset_ids.clear()
        _in_flight.clear()


class _Released(Exception):
    """Set on a shared upload whose owner stopped (task cancelled, or its own Stop): a waiter uploads itself.

    The owner's cancellation or Stop belongs to the owner alone (another node
    failed, a fan-out sibling failed). Handing it to the waiters as their
    error would end unrelated nodes; handing them a bare ``CancelledError``
    would look like their own task was cancelled. Instead the in-flight slot
    is released and the next waiter becomes the owner.
    """


def _stopped_by_caller(exc: BaseException) -> bool:
    return isinstance(exc, (asyncio.CancelledError, CancelRequested)) or (
        isinstance(exc, JobCanceledError) and exc.by_caller
    )


def _check_stop(should_cancel: CancelCheck | None) -> None:
    if should_cancel is not None and should_cancel():
        raise JobCanceledError("Scenario: upload stopped on request", by_caller=True)


async def upload_once(
    key: CacheKey, upload: Callable[[], Awaitable[str]], *, should_cancel: CancelCheck | None = None
) -> str:
    """Return the cached asset id for ``key``, or run ``upload()`` exactly once to get it.

    Concurrent callers on the same loop await the same upload. A failed
    upload is not cached; the next call tries again. If the uploading caller
    is cancelled or stopped, a waiting caller takes over and uploads itself.
    A waiter honours its own ``should_cancel`` while it waits
    (``JobCanceledError(by_caller=True)``).
    """
    loop = asyncio.get_running_loop()
    slot = (id(loop), key)
    while True:
        hit = cached(key)
        if hit is not None:
            return hit
        _check_stop(should_cancel)
        with _lock:
            fut = _in_flight.get(slot)
            owner = fut is None or fut.get_loop() is not loop
            if owner:
                fut = loop.create_future()
                _in_flight[slot] = fut
        assert fut is not None
        if owner:
            return await _upload_as_owner(key, slot, fut, upload)
        try:
            # shield: a waiter's cancellation must not cancel the shared upload.
            return await run_cancellable(asyncio.shield(fut), should_cancel)
        except CancelRequested:
            raise JobCanceledError("Scenario: upload stopped on request", by_caller=True) from None
        except _Released:
            continue  # the owner stopped: upload ourselves (or wait for whoever took over)


async def _upload_as_owner(
    key: CacheKey, slot: tuple[int, CacheKey], fut: asyncio.Future[str], upload: Callable[[], Awaitable[str]]
) -> str:
    try:
        asset_id = await upload()
    except BaseException as exc:
        with _lock:
            if _in_flight.get(slot) is fut:
                del _in_flight[slot]
        if not fut.done():
            fut.set_exception(_Released() if _stopped_by_caller(exc) else exc)
            fut.exception()  # mark retrieved: waiters re-raise it themselves
        raise
    with _lock:
        _asset_ids[key] = asset_id
        if _in_flight.get(slot) is fut:
            del _in_flight[slot]
    if not fut.done():
        fut.set_result(asset_id)
    return asset_id


async def upload_array(
    client: object,
    settings: Settings,
    arr: np.ndarray,
    name: str,
    *,
    should_cancel: CancelCheck | None = None,
) -> str:
    """PNG-encode ``arr`` (gray maps as single-channel PNG) and return its asset id, uploading at most once.

    A cached id is checked with a free ``GET /assets/{id}`` before reuse.

    ``client`` is a ``ScenarioClient`` bound to the running loop. Encoding
    runs in a worker thread: a large batch would otherwise stall sibling nodes.
    ``should_cancel`` (the node's Stop check) reaches every wait, including a
    429/503 Retry-After before the upload: a Stop raises
    ``JobCanceledError(by_caller=True)`` at once.
    """
    png = await asyncio.to_thread(imaging.encode_png, arr, gray_if_equal=True)
    key = cache_key(settings, imaging.content_hash(png))
    hit = cached(key)
    if hit is not None:
        # A free read proves the asset still exists (deleted in the web app, or a reset emulator);
        # otherwise every later run would fail on the stale id until ComfyUI restarts.
        try:
            await client.get_asset(hit, should_cancel=should_cancel)  # type: ignore[attr-defined]
            return hit
        except NotFoundError:
            forget(hit)

    async def _send() -> str:
        asset = await client.upload_image(png, name=name, should_cancel=should_cancel)  # type: ignore[attr-defined]
        if not asset.asset_id:
            raise RuntimeError("Scenario answered the upload without an asset id")
        return asset.asset_id

    return await upload_once(key, _send, should_cancel=should_cancel)
