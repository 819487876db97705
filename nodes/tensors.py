"""ComfyUI tensors <-> numpy images, with an explicit batch and size policy.

ComfyUI's ``IMAGE`` is ``float32 [B, H, W, C]`` in 0..1 (width is ``shape[2]``,
height ``shape[1]``) and ``MASK`` is ``[B, H, W]``. Going out, every batch item
becomes its own uint8 image (never a silent ``image[0]``), clamped and rounded
rather than truncated. Coming back, Scenario results are RGB plus an optional
alpha channel.

Mixed result sizes (different samples or jobs at different sizes) cannot be
stacked as they are. Policy: each result is **padded, centred, to the largest
width and the largest height** in the batch, with black padding; nothing is
resized, so no result is distorted or cropped. The ``MASK`` output tells real
pixels from padding: it is the image's coverage, 1 where a result pixel is
opaque, the alpha value where it is translucent, and 0 in the padding. (This is
the inverse of ``LoadImage``'s mask, which is 1 where the picture is
transparent; use ``InvertMask`` to convert.)

Memory rules (issue 9): the batch tensors are allocated once with
``torch.empty`` and every decoded image is written straight into its slice as
float (one pass, no uint8 staging batch, no zero fill except around padded
items); :func:`decode_to_tensors` decodes file bytes one at a time into the
batch, so at most one decoded image exists beside the tensors; freed heap is
handed back to the OS (:func:`release_memory`) before the node returns.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from ..scenario_api import imaging
from ..scenario_api.errors import ImageDecodeError, ValidationError

_INV_SCALE = np.float32(255.0)


class DecodedLike(Protocol):
    """What :func:`results_to_tensors` needs from ``scenario_api.imaging.DecodedImage`` (read-only)."""

    @property
    def rgb(self) -> np.ndarray: ...

    @property
    def alpha(self) -> np.ndarray | None: ...


def _tensor_error(input_name: str, got: str, allowed: str) -> ValidationError:
    return ValidationError(input_name, got, allowed, param=input_name)


def image_to_arrays(image: object, input_name: str = "image") -> list[np.ndarray]:
    """Split an ``IMAGE`` batch into uint8 arrays, one per batch item.

    Returns ``HxW`` arrays for single-channel input and for gray images stored
    as RGB(A) (R = G = B, as most control maps are: a third of the work, and
    the same single-channel PNG either way), ``HxWx3`` otherwise (a 4th,
    alpha channel is dropped: a control map or init image is opaque).
    Raises :class:`ValidationError` naming ``input_name`` for anything that is
    not a non-empty ``[B, H, W, C]`` tensor with C in 1, 3, 4.
    """
    if not isinstance(image, torch.Tensor):
        raise _tensor_error(input_name, type(image).__name__, "an IMAGE tensor [batch, height, width, channels]")
    t = image
    if t.dim() == 3:  # a single image without batch axis: accept, it is unambiguous
        t = t.unsqueeze(0)
    if t.dim() != 4:
        raise _tensor_error(
            input_name, f"a tensor of shape {tuple(image.shape)}", "an IMAGE tensor [batch, height, width, channels]"
        )
    b, h, w, c = t.shape
    if b == 0 or h == 0 or w == 0:
        raise _tensor_error(input_name, f"an empty IMAGE of shape {tuple(t.shape)}", "at least one non-empty image")
    if c not in (1, 3, 4):
        raise _tensor_error(
            input_name, f"{c} channels (shape {tuple(t.shape)})", "1 (gray), 3 (RGB) or 4 (RGBA) channels"
        )
    out: list[np.ndarray] = []
    for item in t.detach():
        if c == 1 or (c >= 3 and _channels_equal(item)):
            src = item[:, :, 0]  # one channel: a third of the conversion work, and an L PNG downstream
        else:
            src = item[:, :, :3]
        out.append(_to_uint8(src))
    return out


def _channels_equal(item: torch.Tensor) -> bool:
    """R = G = B (a gray map saved as RGB); a sample of rows answers "no" for colour pictures without a full pass.

    A float32 CPU tensor is compared bit for bit through a numpy view (one
    single-threaded pass, no copy: equal bits convert to equal bytes; -0.0
    against 0.0 only costs the gray shortcut); other tensors through torch.
    """
    if item.dtype == torch.float32 and item.device.type == "cpu":
        bits = item.numpy().view(np.uint32)
        rows_sample = bits[:: max(1, bits.shape[0] // 16)]
        return all(
            np.array_equal(rows[:, :, 0], rows[:, :, 1]) and np.array_equal(rows[:, :, 1], rows[:, :, 2])
            for rows in (rows_sample, bits)
        )
    sample = item[:: max(1, item.shape[0] // 16)]
    for view in (sample, item):
        first = view[:, :, :1]
        if not torch.equal(view[:, :, 1:3], first.expand(-1, -1, 2)):  # G and B against R, in one pass
            return False
    return True


def _to_uint8(src: torch.Tensor) -> np.ndarray:
    """Clamp to 0..1, scale, round half to even, as a contiguous uint8 array (NaN -> 0)."""
    if not src.is_floating_point():
        if src.dtype == torch.uint8:
            return np.ascontiguousarray(src.to("cpu").numpy())
        src = src.float()
    data = torch.nan_to_num(src.to("cpu", torch.float32), nan=0.0)  # a new contiguous tensor: safe to edit
    return data.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).numpy()


def image_size(arr: np.ndarray) -> tuple[int, int]:
    """``(width, height)`` of an ``HxW`` or ``HxWxC`` array (note the order)."""
    return int(arr.shape[1]), int(arr.shape[0])


def _batch(sizes: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Uninitialised ``IMAGE`` and ``MASK`` batches for (height, width) items, and the batch's height, width."""
    height = max(h for h, _ in sizes)
    width = max(w for _, w in sizes)
    images = torch.empty((len(sizes), height, width, 3), dtype=torch.float32)
    masks = torch.empty((len(sizes), height, width), dtype=torch.float32)
    return images, masks, height, width


def _put(images: np.ndarray, masks: np.ndarray, i: int, rgb: np.ndarray, alpha: np.ndarray | None) -> None:
    """Write one decoded image into batch slot ``i``: floats in one pass, padding zeroed only if there is some."""
    height, width = images.shape[1], images.shape[2]
    h, w = int(rgb.shape[0]), int(rgb.shape[1])
    if (h, w) != (height, width):
        images[i].fill(0.0)
        masks[i].fill(0.0)
    top, left = (height - h) // 2, (width - w) // 2
    np.divide(rgb, _INV_SCALE, out=images[i, top : top + h, left : left + w], casting="unsafe")
    if alpha is None:
        masks[i, top : top + h, left : left + w].fill(1.0)
    else:
        np.divide(
            np.asarray(alpha, dtype=np.uint8).reshape(h, w), _INV_SCALE, out=masks[i, top : top + h, left : left + w]
        )


def _checked_rgb(i: int, rgb: object) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"result {i}: expected uint8 HxWx3 RGB, got {arr.dtype} {arr.shape}")
    return arr


def results_to_tensors(results: Sequence[DecodedLike]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack decoded results into ``IMAGE [B,H,W,3]`` and ``MASK [B,H,W]``.

    Sizes may differ: see the module docstring for the padding policy.
    """
    if not results:
        raise ValueError("no images to stack")
    rgbs = [_checked_rgb(i, r.rgb) for i, r in enumerate(results)]
    images, masks, _, _ = _batch([(int(a.shape[0]), int(a.shape[1])) for a in rgbs])
    image_np, mask_np = images.numpy(), masks.numpy()
    for i, (rgb, r) in enumerate(zip(rgbs, results, strict=True)):
        _put(image_np, mask_np, i, rgb, r.alpha)
    _release_after(images)
    return images, masks


def decode_to_tensors(
    blobs: Sequence[bytes], decoded: Sequence[DecodedLike | None] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode image files straight into ``IMAGE [B,H,W,3]`` and ``MASK [B,H,W]`` (same policy as above).

    Sizes come from the file headers, so the batch is allocated before any
    pixel is decoded; each file is then decoded and written into its slice,
    and its decoded pixels are dropped before the next one. Peak memory is
    the two tensors plus one decoded image. Raises
    :class:`~scenario_api.errors.ImageDecodeError` for a bad file.

    ``decoded`` (same order as ``blobs``, entries may be None) holds pixels
    already decoded (``imaging.DecodedImage``: the generate nodes decode each
    job's files while the batch's other jobs still run); only the others are
    decoded here.
    """
    if not blobs:
        raise ValueError("no images to stack")
    ready = list(decoded or ())
    ready += [None] * (len(blobs) - len(ready))
    sizes: list[tuple[int, int]] = []
    for data, done in zip(blobs, ready, strict=True):
        if done is not None:
            rgb = _checked_rgb(len(sizes), done.rgb)
            sizes.append((int(rgb.shape[0]), int(rgb.shape[1])))
        else:
            w, h = imaging.image_size(data)
            sizes.append((h, w))
    images, masks, _, _ = _batch(sizes)
    image_np, mask_np = images.numpy(), masks.numpy()
    for i, data in enumerate(blobs):
        item = ready[i]
        ready[i] = None  # dropped once written: peak memory stays the tensors plus what was decoded ahead
        if item is None:
            fresh = imaging.decode_image(data)
            if (fresh.height, fresh.width) != sizes[i]:  # pragma: no cover - a header that lies
                raise ImageDecodeError(f"image {i}: header says {sizes[i][1]}x{sizes[i][0]}, pixels differ")
            item = fresh
        _put(image_np, mask_np, i, _checked_rgb(i, item.rgb), item.alpha)
        del item
    _release_after(images)
    return images, masks


_TRIM: Any = None  # libc's malloc_trim once looked up, False where there is none
TRIM_ABOVE = 64 * 2**20  # decoded pixels freed below this are not worth a heap walk (it costs ~0.1 s)


def _release_after(images: torch.Tensor) -> None:
    """Trim the heap when the decoded uint8 pixels freed meanwhile (a quarter of the float batch) were big."""
    if images.numel() * images.element_size() // 4 >= TRIM_ABOVE:
        release_memory()


def release_memory() -> None:
    """Hand freed heap back to the OS (glibc ``malloc_trim``), so a big batch leaves no resident garbage.

    Large decoded images are freed into malloc's arenas, which glibc keeps
    resident; without this, hundreds of MiB stay held after a Fetch Asset of
    big images. A no-op where glibc is absent (macOS, Windows, musl).
    """
    global _TRIM
    if _TRIM is None:
        _TRIM = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes  # local: only big batches need it
                import ctypes.util

                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                trim = libc.malloc_trim
                trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
                _TRIM = trim
            except (OSError, AttributeError):
                _TRIM = False
    if _TRIM:
        _TRIM(0)
