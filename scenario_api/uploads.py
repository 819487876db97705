"""The one upload service: each distinct image is uploaded once per account, however many ask for it.

Used by the client (:meth:`ScenarioClient.image_ref`, the custom path's image
inputs), the CLI (through the client) and the nodes (control and init maps,
Scenario Upload Asset). Uploading is free, but slow on big maps, and every
upload leaves an asset in the user's account: a re-run, a second node or a
batch holding the same map twice must not upload it again.

* **Key**: ``(API base URL, sha256 of the API key id, sha256 of the image
  bytes)``. Switching account or endpoint (e.g. to the emulator) never reuses
  an asset id from elsewhere. The secret is never part of a key; only asset
  ids are kept (no pixels).
* **Completed uploads** are remembered process-wide, under a
  ``threading.Lock`` (ComfyUI runs prompts in worker threads, each in a fresh
  event loop). A remembered id is checked with a free ``GET /assets/{id}``
  before reuse (the asset may have been deleted in the web app).
* **In-flight uploads** are de-duplicated: callers asking for the same key at
  the same time await one upload. Futures belong to the event loop that
  created them, so they are kept per loop (a weak map: a finished prompt's
  loop takes its entries with it). If the caller doing the upload is
  cancelled, the upload is handed over: the next waiter uploads itself and
  never inherits someone else's cancellation.
* **Paid-request rules** stay with :meth:`ScenarioClient.upload_image`
  (``POST /assets`` resent only when it provably created nothing).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import numpy as np

from . import imaging
from .config import Settings
from .errors import NotFoundError, ScenarioError

__all__ = ["UPLOADS", "UploadKey", "UploadService", "upload_array"]

UploadKey = tuple[str, str, str]


class _Uploader(Protocol):
    settings: Settings

    async def upload_image(self, data: bytes | str, name: str = ...) -> Any: ...

    async def get_asset(self, asset_id: str) -> Any: ...


class _Released(Exception):
    """Set on a shared upload whose owner was cancelled: a waiter uploads itself instead.

    The owner's cancellation belongs to the owner alone (its node failed, a
    fan-out sibling failed). Handing it to the waiters would end unrelated
    work, and a bare ``CancelledError`` would look like their own task was
    cancelled; instead the in-flight slot is released and the next waiter
    becomes the owner.
    """


class UploadService:
    """Process-wide memory of uploaded images, with per-loop de-duplication of uploads in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asset_ids: dict[UploadKey, str] = {}
        self._in_flight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[UploadKey, asyncio.Future[str]]]
        self._in_flight = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ keys and memory

    @staticmethod
    def key(settings: Settings, content_hash: str) -> UploadKey:
        """Key of one image for one account on one API endpoint (no secret inside)."""
        account = settings.credentials.account_id if settings.credentials is not None else ""
        return (settings.base_url, account, content_hash)

    def cached(self, key: UploadKey) -> str | None:
        with self._lock:
            return self._asset_ids.get(key)

    def content_hashes(self, settings: Settings) -> dict[str, str]:
        """Asset id -> content hash of what was uploaded for ``settings``' account and endpoint.

        The job ledger fingerprints a request by its images' content, so a map
        re-uploaded after a restart (under a new asset id) still matches.
        """
        base, account, _ = self.key(settings, "")
        with self._lock:
            return {v: k[2] for k, v in self._asset_ids.items() if k[0] == base and k[1] == account}

    def forget(self, asset_id: str) -> None:
        """Drop an asset id that Scenario no longer knows (deleted, other project)."""
        with self._lock:
            for k in [k for k, v in self._asset_ids.items() if v == asset_id]:
                del self._asset_ids[k]

    def clear(self) -> None:
        """Forget everything (tests; never needed in normal use)."""
        with self._lock:
            self._asset_ids.clear()
            self._in_flight.clear()

    def in_flight_count(self) -> int:
        """Uploads currently in flight, over all event loops."""
        with self._lock:
            return sum(len(slots) for slots in self._in_flight.values())

    # ------------------------------------------------------------------ uploading

    async def asset_id(self, client: _Uploader, image: bytes, name: str, *, digest: str | None = None) -> str:
        """The asset id of ``image`` (PNG/JPEG/WebP bytes) on ``client``'s account, uploading it at most once.

        ``digest`` is ``imaging.content_hash(image)`` when the caller computed
        it already (in a worker thread: hashing megabytes on the event loop
        would stall every other node of the prompt).
        """
        if digest is None:
            digest = await asyncio.to_thread(imaging.content_hash, image) if len(image) > 1 << 18 else None
            digest = digest or imaging.content_hash(image)
        key = self.key(client.settings, digest)
        hit = self.cached(key)
        if hit is not None:
            # A free read proves the asset still exists (deleted in the web app, or a reset emulator);
            # otherwise every later run would fail on the stale id until the process restarts.
            try:
                await client.get_asset(hit)
                return hit
            except NotFoundError:
                self.forget(hit)

        async def send() -> str:
            earlier = await _ledger_upload(client, key[2])
            if earlier is not None:
                return earlier
            asset = await client.upload_image(image, name)
            if not getattr(asset, "asset_id", None):
                raise ScenarioError("Scenario answered the upload without an asset id")
            return str(asset.asset_id)

        return await self.upload_once(key, send)

    async def upload_once(self, key: UploadKey, upload: Callable[[], Awaitable[str]]) -> str:
        """Return the remembered asset id for ``key``, or run ``upload()`` once (per loop) to get it.

        Concurrent callers on the same loop await the same upload. A failed
        upload is not remembered; the next call tries again. If the uploading
        caller is cancelled, a waiting caller takes over and uploads itself.
        """
        loop = asyncio.get_running_loop()
        while True:
            hit = self.cached(key)
            if hit is not None:
                return hit
            with self._lock:
                slots = self._in_flight.setdefault(loop, {})
                fut = slots.get(key)
                owner = fut is None
                if fut is None:
                    fut = loop.create_future()
                    slots[key] = fut
            if owner:
                return await self._upload_as_owner(loop, key, fut, upload)
            try:
                # shield: a waiter's cancellation must not cancel the shared upload.
                return await asyncio.shield(fut)
            except _Released:
                continue  # the owner was cancelled: upload ourselves (or wait for whoever took over)

    async def _upload_as_owner(
        self,
        loop: asyncio.AbstractEventLoop,
        key: UploadKey,
        fut: asyncio.Future[str],
        upload: Callable[[], Awaitable[str]],
    ) -> str:
        try:
            asset_id = await upload()
        except BaseException as exc:
            self._release(loop, key, fut)
            if not fut.done():
                fut.set_exception(_Released() if isinstance(exc, asyncio.CancelledError) else exc)
                fut.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        with self._lock:
            self._asset_ids[key] = asset_id
        self._release(loop, key, fut)
        if not fut.done():
            fut.set_result(asset_id)
        return asset_id

    def _release(self, loop: asyncio.AbstractEventLoop, key: UploadKey, fut: asyncio.Future[str]) -> None:
        with self._lock:
            slots = self._in_flight.get(loop)
            if slots is not None and slots.get(key) is fut:
                del slots[key]
                if not slots:
                    del self._in_flight[loop]


UPLOADS = UploadService()


async def _ledger_upload(client: Any, content_hash: str) -> str | None:
    """An asset id the job ledger remembers for this image on this account (an earlier process uploaded it),
    if the asset still exists; None otherwise."""
    intents = getattr(client, "_intents", None)
    if intents is None or getattr(intents, "ledger", None) is None:
        return None
    record = await intents.reusable(intents.upload_fingerprint(content_hash), kind="upload")
    if record is None or not record.asset_ids:
        return None
    asset_id = record.asset_ids[0]
    try:
        await client.get_asset(asset_id)
    except NotFoundError:
        return None
    return asset_id


async def upload_array(client: _Uploader, arr: np.ndarray, name: str) -> str:
    """PNG-encode ``arr`` (gray maps as single-channel PNG) and return its asset id, uploading at most once.

    Encoding runs in a worker thread: a large batch would otherwise stall the
    event loop (and sibling nodes).
    """
    png, digest = await asyncio.to_thread(_encode_and_hash, arr)
    return await UPLOADS.asset_id(client, png, name, digest=digest)


def _encode_and_hash(arr: np.ndarray) -> tuple[bytes, str]:
    png = imaging.encode_png(arr, gray_if_equal=True)
    return png, imaging.content_hash(png)
