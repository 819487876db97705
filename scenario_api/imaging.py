"""Pixels <-> PNG bytes <-> data URLs, with numpy and Pillow only (no torch).

Conventions (the ComfyUI adapter converts tensors to these arrays):

* images are ``numpy.uint8`` arrays, ``HxW`` (gray), ``HxWx1``, ``HxWx3`` (RGB)
  or ``HxWx4`` (RGBA); anything else is a ``ValueError`` naming what was given,
  because a silently reinterpreted array means a wrong (and paid) request;
* control maps that are really gray (R = G = B) are sent as single-channel
  ``L`` PNGs: a third of the bytes, and the server sees exactly what we meant;
* alpha is kept apart (:func:`split_alpha`, :attr:`DecodedImage.alpha`) since
  Scenario results are RGB and ComfyUI carries masks separately.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageDecodeError

__all__ = [
    "DecodedImage",
    "encode_png",
    "split_alpha",
    "decode_image",
    "reencode_png",
    "image_size",
    "to_data_url",
    "from_data_url",
    "content_hash",
    "sniff_mime",
]

_MIME_BY_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_ACCEPTED_DATA_URL_MIMES = ("image/png", "image/jpeg", "image/jpg", "image/webp")


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image: ``rgb`` is HxWx3 uint8; ``alpha`` HxW uint8 when the file had transparency."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    mime: str

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    def __repr__(self) -> str:
        alpha = "alpha" if self.alpha is not None else "no alpha"
        return f"DecodedImage({self.width}x{self.height}, {alpha}, {self.mime})"


# --------------------------------------------------------------------------- arrays


def _check_array(arr: object, *, what: str = "image") -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype != np.uint8:
        raise ValueError(f"{what} must have dtype uint8 (0..255), got {arr.dtype}; convert (clip, round) first")
    if arr.ndim == 2:
        pass
    elif arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        pass
    else:
        raise ValueError(f"{what} must be HxW, HxWx1, HxWx3 or HxWx4, got shape {tuple(arr.shape)}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{what} is empty (shape {tuple(arr.shape)})")
    return arr


def split_alpha(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(rgb HxWx3, alpha HxW or None)`` from any accepted uint8 layout.

    Gray input is replicated to three channels; ``alpha`` is None unless the
    input had a fourth channel.
    """
    arr = _check_array(arr)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2), None
    channels = arr.shape[2]
    if channels == 1:
        return np.repeat(arr, 3, axis=2), None
    if channels == 3:
        return arr, None
    return np.ascontiguousarray(arr[:, :, :3]), np.ascontiguousarray(arr[:, :, 3])


def _is_gray(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 1], rgb[:, :, 2]))


def encode_png(arr: np.ndarray, *, gray_if_equal: bool = True, keep_alpha: bool = True) -> bytes:
    """PNG bytes for a uint8 array (deterministic: no timestamps or text chunks).

    ``gray_if_equal``: an RGB(A) image whose channels are all equal becomes an
    ``L`` (or ``LA``) PNG. A fully opaque alpha channel is dropped; any other
    alpha is kept unless ``keep_alpha`` is False.
    """
    arr = _check_array(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        mode, data = "L", arr
    else:
        rgb, alpha = split_alpha(arr)
        if alpha is not None and (not keep_alpha or bool(np.all(alpha == 255))):
            alpha = None
        gray = gray_if_equal and _is_gray(rgb)
        if alpha is None:
            mode, data = ("L", rgb[:, :, 0]) if gray else ("RGB", rgb)
        elif gray:
            mode, data = "LA", np.stack([rgb[:, :, 0], alpha], axis=2)
        else:
            mode, data = "RGBA", np.concatenate([rgb, alpha[:, :, None]], axis=2)
    image = Image.fromarray(np.ascontiguousarray(data))  # the shape implies the mode
    if image.mode != mode:  # pragma: no cover - guards a future Pillow inferring differently
        raise ValueError(f"Pillow read a {image.mode} image where {mode} was meant")
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


# --------------------------------------------------------------------------- decoding


def _to_uint8_gray(image: Image.Image) -> np.ndarray:
    """16/32-bit integer or float gray to uint8 without wrapping around."""
    arr = np.asarray(image)
    if image.mode == "F":
        arr = np.nan_to_num(arr.astype(np.float64), nan=0.0)
        peak = float(arr.max()) if arr.size else 0.0
        scale = 255.0 if peak <= 1.0 else 1.0
        return np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
    arr = arr.astype(np.int64)
    if image.mode.startswith("I;16") or (arr.size and int(arr.max()) > 255):
        return np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
    return np.clip(arr, 0, 255).astype(np.uint8)


# Decoded-pixel limit (Pillow's own default, 89.5 Mpx, or its current setting): checked on the header, before
# any pixel is decoded, the same in every thread.
MAX_DECODED_PIXELS = int(Image.MAX_IMAGE_PIXELS or 89_478_485)


class _TooManyPixels(ValueError):
    pass


def _check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_DECODED_PIXELS:
        raise _TooManyPixels(f"{width} x {height} pixels is above the limit of {MAX_DECODED_PIXELS} pixels")


def decode_image(data: bytes) -> DecodedImage:
    """Decode PNG/JPEG/WebP (and other Pillow formats) into RGB + optional alpha.

    Handles ``L``, ``LA``, ``P`` (with a transparency entry), ``RGB``,
    ``RGBA``, CMYK and 16-bit gray. Raises :class:`ImageDecodeError` with a
    clear message for empty, corrupt or non-image bytes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageDecodeError(f"Expected image bytes, got {type(data).__name__}")
    raw = bytes(data)
    if not raw:
        raise ImageDecodeError("No image data: the file or download is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(raw))  # reads the header only
        _check_pixels(image.size)  # our own limit: no process-wide ``warnings`` filter (it races between threads)
        image.load()
    except UnidentifiedImageError:
        raise ImageDecodeError(
            f"Not an image Pillow can read ({len(raw)} bytes starting {raw[:8].hex()}); expected PNG, JPEG or WebP"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"Image refused as too large to decode safely: {exc}") from None
    except _TooManyPixels as exc:
        raise ImageDecodeError(f"Image refused as too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"Corrupt or truncated image ({len(raw)} bytes): {exc}") from None
    mime = _MIME_BY_FORMAT.get(image.format or "", Image.MIME.get(image.format or "", "application/octet-stream"))
    mode = image.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        gray = _to_uint8_gray(image)
        return DecodedImage(np.repeat(gray[:, :, None], 3, axis=2), None, mime)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint8)
        return DecodedImage(np.ascontiguousarray(rgba[:, :, :3]), np.ascontiguousarray(rgba[:, :, 3]), mime)
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return DecodedImage(np.ascontiguousarray(rgb), None, mime)


def image_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` read from the header only."""
    try:
        with Image.open(io.BytesIO(bytes(data))) as image:
            return int(image.width), int(image.height)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageDecodeError(f"Not a readable image ({len(data)} bytes): {exc}") from None


def reencode_png(data: bytes, *, keep_alpha: bool = False) -> bytes:
    """Any readable image file as a PNG (gray maps as ``L``); alpha dropped unless asked."""
    decoded = decode_image(data)
    if keep_alpha and decoded.alpha is not None:
        return encode_png(np.concatenate([decoded.rgb, decoded.alpha[:, :, None]], axis=2))
    return encode_png(decoded.rgb)


# --------------------------------------------------------------------------- data URLs and hashes


def sniff_mime(data: bytes) -> str | None:
    """The image MIME type from magic bytes (PNG, JPEG, WebP), else None."""
    head = bytes(data[:12])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def to_data_url(data: bytes, mime: str = "image/png") -> str:
    """``data:<mime>;base64,<…>`` for image bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or not bytes(data):
        raise ValueError("to_data_url needs non-empty image bytes")
    mime = mime.strip().lower()
    if mime not in _ACCEPTED_DATA_URL_MIMES:
        raise ValueError(f"unsupported MIME type {mime!r}; use one of {', '.join(_ACCEPTED_DATA_URL_MIMES)}")
    return f"data:{mime};base64,{base64.b64encode(bytes(data)).decode('ascii')}"


def from_data_url(url: str) -> tuple[bytes, str]:
    """``(bytes, mime)`` from an image data URL; :class:`ImageDecodeError` explains what is wrong."""
    if not isinstance(url, str):
        raise ImageDecodeError(f"Expected a data URL string, got {type(url).__name__}")
    if not url.startswith("data:"):
        raise ImageDecodeError("Not a data URL: it must start with 'data:image/png;base64,' (or jpeg/webp)")
    header, sep, payload = url.partition(",")
    if not sep:
        raise ImageDecodeError("Malformed data URL: no ',' between the header and the data")
    params = header[5:].split(";")
    mime = params[0].strip().lower()
    if "base64" not in (p.strip().lower() for p in params[1:]):
        raise ImageDecodeError("Data URL must be base64-encoded (';base64,' missing)")
    if mime not in _ACCEPTED_DATA_URL_MIMES:
        raise ImageDecodeError(
            f"Data URL has MIME type {mime or '(none)'!r}; allowed: {', '.join(_ACCEPTED_DATA_URL_MIMES)}"
        )
    cleaned = "".join(payload.split())
    try:
        data = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ImageDecodeError(f"Data URL payload is not valid base64 ({len(cleaned)} characters)") from None
    if not data:
        raise ImageDecodeError("Data URL holds no data")
    return data, "image/jpeg" if mime == "image/jpg" else mime


def content_hash(data: bytes) -> str:
    """sha256 hex digest: the key for upload caches and log summaries."""
    return hashlib.sha256(bytes(data)).hexdigest()
