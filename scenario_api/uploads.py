"""The one upload service: each distinct image is uploaded once per account, however many ask for it.

Used by the client (:meth:`ScenarioClient.image_ref`, the custom path's image
inputs: :func:`upload_custom_inputs`), the CLI (through the client) and the nodes (control and init maps,
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
* **Paid-request rules** hold for the upload itself (:func:`upload_image`,
  behind :meth:`ScenarioClient.upload_image`): the intent is in the ledger
  before ``POST /assets`` leaves, which is resent only when it provably
  created nothing; an ambiguous outcome raises :class:`OutcomeUnknownError`.
  Its JSON body (base64 of megabytes) is built in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from . import imaging, spec
from .config import Settings
from .errors import (
    AmbiguousOutcome,
    ImageDecodeError,
    NotFoundError,
    OutcomeUnknownError,
    ScenarioError,
    ValidationError,
)
from .ledger import UPLOAD
from .models import Asset, Model
from .retry import RetryPolicy
from .transport import LOG, BodyPieces, Redacted, Transport, api_error, decode_body

if TYPE_CHECKING:
    from .intents import Intents, Ticket

__all__ = ["UPLOADS", "UploadKey", "UploadService", "upload_array", "upload_custom_inputs", "upload_image"]

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


async def upload_array(
    client: _Uploader,
    arr: np.ndarray,
    name: str,
    *,
    format: str = "png",
    quality: int | None = None,
    on_encoded: Callable[[imaging.EncodedImage, float], None] | None = None,
) -> str:
    """Encode ``arr`` and return its asset id, uploading it at most once.

    PNG by default (gray maps as single-channel PNG): control maps always
    use it. ``format`` / ``quality`` pick an opt-in lossy encoding for init
    images (:func:`imaging.encode_image`: ``"jpeg"`` or ``"webp"``, quality
    1-100). The upload is keyed by the hash of the encoded bytes, so the same
    pixels as PNG and as JPEG are two different uploads. ``on_encoded`` is
    called with the encoded image and the encode time in seconds (for the
    caller's report).

    Encoding runs in a worker thread: a large batch would otherwise stall the
    event loop (and sibling nodes).
    """
    encoded, digest, seconds = await asyncio.to_thread(_encode_and_hash, arr, format, quality)
    if on_encoded is not None:
        on_encoded(encoded, seconds)
    return await UPLOADS.asset_id(client, encoded.data, name, digest=digest)


async def upload_custom_inputs(client: _Uploader, model: Model, checked: dict[str, Any]) -> dict[str, Any]:
    """A custom model's checked body (:func:`spec.check_request`) with its data URLs uploaded and replaced by ids.

    The image inputs are the model's own (one asset id, or a list for a
    ``file_array`` input such as Z-Image's ``controlImage``). Called after
    validation, so an invalid request uploads nothing; a quote never calls it.
    """
    control = model.declared.role("control_image")
    for field in spec.custom_file_inputs(model):
        value = checked.get(field)
        items = value if isinstance(value, list) else [value]
        if not any(isinstance(v, str) and v.startswith("data:") for v in items):
            continue
        name = "comfyui-control.png" if control is not None and field == control.name else "comfyui-init.png"
        done = [
            await UPLOADS.asset_id(client, imaging.from_data_url(v)[0], name)
            if isinstance(v, str) and v.startswith("data:")
            else v
            for v in items
        ]
        checked[field] = done if isinstance(value, list) else done[0]
    return checked


def _encode_and_hash(arr: np.ndarray, fmt: str, quality: int | None) -> tuple[imaging.EncodedImage, str, float]:
    """(encoded image, hash of its bytes, seconds the encode took); run in a worker thread."""
    started = time.perf_counter()
    encoded = imaging.encode_image(arr, format=fmt, quality=quality, gray_if_equal=True)
    seconds = time.perf_counter() - started
    return encoded, imaging.content_hash(encoded.data), seconds


# --------------------------------------------------------------------------- the paid upload itself

_B64_PIECE = 3 * 2**16  # bytes per base64 piece (a multiple of 3): a fraction of a millisecond each


def _upload_body(name: str, data: bytes, mime: str) -> BodyPieces:
    """``{"name": ..., "image": "data:<mime>;base64,..."}`` as JSON pieces (base64 needs no JSON escaping).

    Runs in a worker thread; it lets go of the GIL after every piece (``sleep(0)``) so the event loop never
    waits for it longer than one piece, and never joins the pieces (the transport sends them one by one).
    """
    parts = [b'{"name":', json.dumps(name).encode("utf-8"), b',"image":"data:', mime.encode("ascii"), b";base64,"]
    for i in range(0, len(data), _B64_PIECE):
        parts.append(base64.b64encode(data[i : i + _B64_PIECE]))
        time.sleep(0)
    parts.append(b'"}')
    return BodyPieces(parts)


async def _upload_request(data: bytes | str, name: str) -> tuple[dict[str, Any] | None, BodyPieces | None, bytes]:
    """``(json payload, or raw body, image bytes)`` of an upload; ValidationError for anything but an image."""
    if isinstance(data, str):
        try:
            raw_image = imaging.from_data_url(data)[0]
        except ImageDecodeError as exc:
            raise ValidationError("image", data, f"a PNG/JPEG/WebP data URL ({exc.message})") from None
        return {"name": name, "image": data}, None, raw_image
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw_image = bytes(data)
        mime = imaging.sniff_mime(raw_image)
        if mime is None:
            raise ValidationError("image", f"<{len(data)} bytes>", "PNG, JPEG or WebP image bytes")
        # base64 and JSON of megabytes are CPU work: built in a worker thread, in pieces short enough
        # that the event loop (the prompt's other nodes) never waits long for the GIL
        return None, await asyncio.to_thread(_upload_body, name, raw_image, mime), raw_image
    raise ValidationError("image", type(data).__name__, "image bytes or a data URL")


async def upload_image(
    transport: Transport, intents: Intents, policy: RetryPolicy, data: bytes | str, name: str
) -> Asset:
    """Upload an image (bytes or a data URL) as an asset, under the paid-request rules (see the module doc)."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name", name, "a non-empty asset name")
    name = name.strip()
    payload, content, raw_image = await _upload_request(data, name)
    digest = (
        await asyncio.to_thread(imaging.content_hash, raw_image)
        if len(raw_image) > 1 << 18
        else imaging.content_hash(raw_image)
    )
    ticket = await intents.begin(UPLOAD, "/assets", {}, prompt=name, fingerprint=intents.upload_fingerprint(digest))
    what = f"the upload of '{name}'"
    try:
        try:
            response = await transport.paid("POST", "/assets", what=what, policy=policy, json=payload, content=content)
        finally:
            await intents.sent(ticket)
    except AmbiguousOutcome as exc:
        await intents.uncertain(ticket, f"upload outcome unknown: {exc.cause}")
        raise OutcomeUnknownError(
            f"Scenario: the upload of '{name}' may or may not have created an asset ({exc.cause}). "
            "Nothing was retried automatically. Uploading again is harmless: at worst it leaves an unused asset",
            status=exc.status,
        ) from None
    except ScenarioError as exc:
        await intents.refused(ticket, exc.message)
        raise
    except asyncio.CancelledError:
        await intents.uncertain(ticket, "cancelled while the upload was on its way")
        raise
    asset = await _uploaded_asset(intents, ticket, response, what)
    LOG.info("uploaded asset %s (%s)", asset.asset_id, Redacted(data if isinstance(data, str) else raw_image))
    return asset


async def _uploaded_asset(intents: Intents, ticket: Ticket, response: Any, what: str) -> Asset:
    """The asset of an upload's final answer; a refusal raises, a 2xx without a usable id is "outcome unknown"."""
    if not 200 <= response.status_code < 300:
        error = api_error(response, what=what)
        await intents.refused(ticket, error.message)
        raise error
    asset = Asset.from_api(decode_body(response))
    if not asset.asset_id or not spec.ASSET_ID_RE.fullmatch(asset.asset_id):
        await intents.uncertain(ticket, f"HTTP {response.status_code} answer without a usable asset id")
        raise OutcomeUnknownError(
            f"Scenario answered {what} (HTTP {response.status_code}) without a usable asset id; it may or may "
            "not have created an asset. Uploading again is harmless: at worst it leaves an unused asset"
        )
    await intents.uploaded(ticket, asset.asset_id)
    return asset
