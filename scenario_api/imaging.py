"""Pixels <-> PNG bytes <-> data URLs, with numpy and Pillow only (no torch).

Conventions (the ComfyUI adapter converts tensors to these arrays):

* images are ``numpy.uint8`` arrays, ``HxW`` (gray), ``HxWx1``, ``HxWx3`` (RGB)
  or ``HxWx4`` (RGBA); anything else is a ``ValueError`` naming what was given,
  because a silently reinterpreted array means a wrong (and paid) request;
* control maps that are really gray (R = G = B) are sent as single-channel
  ``L`` PNGs: a third of the bytes, and the server sees exactly what we meant;
  binary ones (only 0 and 255: edges, lines) as exact 1-bit PNGs;
* alpha is kept apart (:func:`split_alpha`, :attr:`DecodedImage.alpha`) since
  Scenario results are RGB and ComfyUI carries masks separately.

Speed rules (issue 9): the PNG level follows the content (single-channel maps
compress well at level 1, colour pictures do not pay for level 6, see
:func:`png_level`); an opt-in lossy format (JPEG or WebP at a stated quality,
:func:`encode_image`) is offered for init images; decoding keeps Pillow's own
buffer (no ``convert`` unless the mode needs it, gray stays one channel under a
broadcast view), and bytes that already are a suitable PNG are never
re-encoded (:func:`reencode_png`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageDecodeError

__all__ = [
    "DecodedImage",
    "EncodedImage",
    "encode_png",
    "encode_image",
    "png_level",
    "IMAGE_FORMATS",
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

#: zlib level for single-channel maps (edges, depth, masks): long runs, level 1 is within a few % of level 9.
PNG_LEVEL_MAP = 1
#: zlib level for colour pictures: about 4x faster than Pillow's default 6 for under 10 % more bytes.
PNG_LEVEL_PICTURE = 3
#: ``encode_image`` formats: lossless PNG (the default) and the opt-in lossy ones.
IMAGE_FORMATS = ("png", "jpeg", "webp")
LOSSY_DEFAULT_QUALITY = 90
_FORMAT_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image: ``rgb`` is HxWx3 uint8; ``alpha`` HxW uint8 when the file had transparency.

    Both may be read-only views of the decoded buffer (a gray file gives one
    channel broadcast to three, an RGBA file two strided views): read them,
    copy before writing.
    """

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
    """R = G = B everywhere; a colour picture is usually told apart by a sample of rows, without a full pass."""
    sample = rgb[:: max(1, rgb.shape[0] // 16)]
    for view in (sample, rgb):
        if not (np.array_equal(view[:, :, 0], view[:, :, 1]) and np.array_equal(view[:, :, 1], view[:, :, 2])):
            return False
    return True


def png_level(mode: str) -> int:
    """The zlib level :func:`encode_png` uses for a Pillow mode: maps (``1``, ``L``, ``LA``) 1, colour 3."""
    return PNG_LEVEL_MAP if mode in ("L", "LA", "1") else PNG_LEVEL_PICTURE


def _is_binary(gray: np.ndarray) -> bool:
    """Only 0 and 255 (an edge or line map): a sample of rows rules most other maps out first."""
    sample = gray[:: max(1, gray.shape[0] // 16)]
    return all(bool(np.all((view == 0) | (view == 255))) for view in (sample, gray))


def _prepare(arr: np.ndarray, gray_if_equal: bool, keep_alpha: bool) -> tuple[str, np.ndarray]:
    """(Pillow mode, contiguous uint8 data) of what will be encoded."""
    arr = _check_array(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        mode, data = "L", arr
    else:
        rgb = arr[:, :, :3]  # views: the only copy made is the contiguous buffer Pillow gets
        alpha = arr[:, :, 3] if arr.shape[2] == 4 else None
        if alpha is not None and (not keep_alpha or bool(np.all(alpha == 255))):
            alpha = None
        gray = gray_if_equal and _is_gray(rgb)
        if alpha is None:
            mode, data = ("L", rgb[:, :, 0]) if gray else ("RGB", rgb)
        elif gray:
            mode, data = "LA", np.stack([rgb[:, :, 0], alpha], axis=2)
        else:
            mode, data = "RGBA", arr
    return mode, data


def _pillow(mode: str, data: np.ndarray) -> Image.Image:
    image = Image.fromarray(np.ascontiguousarray(data))  # the shape implies the mode
    if image.mode != mode:  # pragma: no cover - guards a future Pillow inferring differently
        raise ValueError(f"Pillow read a {image.mode} image where {mode} was meant")
    return image


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def _bilevel_png(gray: np.ndarray, level: int) -> bytes:
    """A 1-bit gray PNG of an ``HxW`` uint8 array holding only 0 and 255 (exact: 255 -> 1 -> 255 on decode).

    Written directly (signature, IHDR, one IDAT, IEND): the rows are packed
    8 pixels a byte by numpy and deflated once with no PNG filter and zlib's
    run-length strategy, which suits line art. Pillow's own path (convert to
    mode ``1``, then per-row filter trials) costs several times as much for
    about the same bytes.
    """
    height, width = gray.shape
    packed = np.packbits(gray, axis=1)  # nonzero -> 1, rows padded to whole bytes as PNG wants
    rows = np.empty((height, packed.shape[1] + 1), np.uint8)
    rows[:, 0] = 0  # filter type "None" for every row
    rows[:, 1:] = packed
    deflate = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    idat = deflate.compress(rows.data) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, gray, deflate, no filter, no interlace
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def encode_png(
    arr: np.ndarray,
    *,
    gray_if_equal: bool = True,
    keep_alpha: bool = True,
    compress_level: int | None = None,
    bilevel_if_binary: bool = True,
) -> bytes:
    """PNG bytes for a uint8 array (deterministic: no timestamps or text chunks).

    ``gray_if_equal``: an RGB(A) image whose channels are all equal becomes an
    ``L`` (or ``LA``) PNG. ``bilevel_if_binary``: a gray image holding only 0
    and 255 (edge and line maps) becomes a 1-bit PNG, exact and about half the
    time and bytes of an ``L`` one. A fully opaque alpha channel is dropped;
    any other alpha is kept unless ``keep_alpha`` is False. ``compress_level``
    (0-9) defaults to :func:`png_level` of the chosen mode: the same pixels
    always give the same bytes.
    """
    mode, data = _prepare(arr, gray_if_equal, keep_alpha)
    if mode == "L" and bilevel_if_binary and _is_binary(data):
        return _bilevel_png(data, png_level("1") if compress_level is None else _check_level(compress_level))
    image = _pillow(mode, data)
    level = png_level(mode) if compress_level is None else _check_level(compress_level)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def _check_level(level: object) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
        raise ValueError(f"compress_level must be an integer from 0 to 9, got {level!r}")
    return level


@dataclass(frozen=True)
class EncodedImage:
    """Upload-ready image bytes and their MIME type (``image/png``, ``image/jpeg`` or ``image/webp``)."""

    data: bytes
    mime: str

    def __repr__(self) -> str:
        return f"EncodedImage({self.mime}, {len(self.data)} bytes)"


def encode_image(
    arr: np.ndarray, *, format: str = "png", quality: int | None = None, gray_if_equal: bool = True
) -> EncodedImage:
    """Encode a uint8 array for upload: lossless PNG (default) or an opt-in lossy JPEG / WebP.

    ``format`` is one of :data:`IMAGE_FORMATS`. The lossy formats suit init
    images (photos), never control maps whose exact edges matter; ``quality``
    (1-100, default :data:`LOSSY_DEFAULT_QUALITY`) applies to them only. JPEG
    has no alpha (it is dropped); WebP keeps it. Output is deterministic.
    """
    fmt = str(format).strip().lower()
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(IMAGE_FORMATS)}, got {format!r}")
    if fmt == "png":
        if quality is not None:
            raise ValueError("quality applies to the lossy formats (jpeg, webp) only; PNG is lossless")
        return EncodedImage(encode_png(arr, gray_if_equal=gray_if_equal), "image/png")
    q = LOSSY_DEFAULT_QUALITY if quality is None else quality
    if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= 100:
        raise ValueError(f"quality must be an integer from 1 to 100, got {quality!r}")
    mode, data = _prepare(arr, gray_if_equal, keep_alpha=fmt == "webp")
    image = _pillow(mode, data)
    if fmt == "webp" and mode in ("L", "LA"):
        image = image.convert("RGBA" if mode == "LA" else "RGB")  # WebP stores colour only
    buf = io.BytesIO()
    if fmt == "jpeg":
        image.save(buf, format="JPEG", quality=q, optimize=False, subsampling="4:2:0" if q < 95 else "4:4:4")
    else:
        image.save(buf, format="WEBP", quality=q, method=2, exact=False)
    return EncodedImage(buf.getvalue(), _FORMAT_MIME[fmt])


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


_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
_WIDE_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _open(data: bytes | bytearray | memoryview) -> Image.Image:
    """A fully decoded Pillow image; :class:`ImageDecodeError` with a clear message otherwise."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageDecodeError(f"Expected image bytes, got {type(data).__name__}")
    size = len(data)
    if not size:
        raise ImageDecodeError("No image data: the file or download is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        _check_pixels(image.size)  # our own limit: no process-wide ``warnings`` filter (it races between threads)
        image.load()
    except UnidentifiedImageError:
        raise ImageDecodeError(
            f"Not an image Pillow can read ({size} bytes starting {bytes(data[:8]).hex()}); expected PNG, JPEG or WebP"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, _TooManyPixels) as exc:
        raise ImageDecodeError(f"Image refused as too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"Corrupt or truncated image ({size} bytes): {exc}") from None
    return image


def _gray3(gray: np.ndarray) -> np.ndarray:
    """An HxW gray plane seen as HxWx3 (a read-only broadcast view, no copy)."""
    return np.broadcast_to(gray[:, :, None], (gray.shape[0], gray.shape[1], 3))


def decode_image(data: bytes) -> DecodedImage:
    """Decode PNG/JPEG/WebP (and other Pillow formats) into RGB + optional alpha.

    Handles ``L``, ``LA``, ``P`` (with a transparency entry), ``RGB``,
    ``RGBA``, CMYK and 16-bit gray. Raises :class:`ImageDecodeError` with a
    clear message for empty, corrupt or non-image bytes.

    The common modes cost one copy of the decoded pixels (Pillow's buffer
    into numpy) and nothing more: ``RGB`` is used as it is, ``L`` stays one
    channel (broadcast to three), ``RGBA`` / ``LA`` are split by views.
    Only palette, CMYK, YCbCr and other rare modes go through ``convert``.
    """
    image = _open(data)
    mime = _MIME_BY_FORMAT.get(image.format or "", Image.MIME.get(image.format or "", "application/octet-stream"))
    mode = image.mode
    if mode in _WIDE_GRAY_MODES:
        return DecodedImage(_gray3(_to_uint8_gray(image)), None, mime)
    if mode in ("L", "RGB", "RGBA", "LA") and "transparency" not in image.info:
        arr = np.asarray(image)
        if mode == "RGB":
            return DecodedImage(arr, None, mime)
        if mode == "L":
            return DecodedImage(_gray3(arr), None, mime)
        if mode == "RGBA":
            return DecodedImage(arr[:, :, :3], arr[:, :, 3], mime)
        return DecodedImage(_gray3(arr[:, :, 0]), arr[:, :, 1], mime)
    has_alpha = mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint8)
        return DecodedImage(rgba[:, :, :3], rgba[:, :, 3], mime)
    return DecodedImage(np.asarray(image.convert("RGB"), dtype=np.uint8), None, mime)


def image_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` read from the header only."""
    try:
        with Image.open(io.BytesIO(bytes(data))) as image:
            return int(image.width), int(image.height)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageDecodeError(f"Not a readable image ({len(data)} bytes): {exc}") from None


def _usable_png(data: bytes, keep_alpha: bool) -> bool:
    """Whether ``data`` already is a PNG :func:`reencode_png` would only rewrite (8-bit L/RGB, or with alpha)."""
    if sniff_mime(data) != "image/png":
        return False
    try:
        with Image.open(io.BytesIO(data)) as image:
            modes = ("L", "RGB", "LA", "RGBA") if keep_alpha else ("L", "RGB")
            if image.mode not in modes or "transparency" in image.info:
                return False
            image.verify()  # chunk CRCs and the chunk sequence, without inflating the pixels
            return True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False


def reencode_png(data: bytes, *, keep_alpha: bool = False) -> bytes:
    """Any readable image file as a PNG (gray maps as ``L``); alpha dropped unless asked.

    Bytes that already are an 8-bit ``L`` or ``RGB`` PNG (``LA``/``RGBA`` too
    with ``keep_alpha``) come back unchanged, after a header check only: no
    decode, no re-encode. Anything else is decoded and encoded again.
    """
    if _usable_png(data, keep_alpha):
        return bytes(data)
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
