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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from ..scenario_api.errors import ValidationError


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

    Returns ``HxW`` arrays for single-channel input and ``HxWx3`` otherwise
    (a 4th, alpha channel is dropped: a control map or init image is opaque).
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
    if not t.is_floating_point():
        t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    data = t.detach().to("cpu", torch.float32)
    pixels = torch.nan_to_num(data, nan=0.0).clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).numpy()
    out: list[np.ndarray] = []
    for item in pixels:
        if c == 1:
            out.append(np.ascontiguousarray(item[:, :, 0]))
        else:
            out.append(np.ascontiguousarray(item[:, :, :3]))
    return out


def image_size(arr: np.ndarray) -> tuple[int, int]:
    """``(width, height)`` of an ``HxW`` or ``HxWxC`` array (note the order)."""
    return int(arr.shape[1]), int(arr.shape[0])


def results_to_tensors(results: Sequence[DecodedLike]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack decoded results into ``IMAGE [B,H,W,3]`` and ``MASK [B,H,W]``.

    Sizes may differ: see the module docstring for the padding policy.
    """
    if not results:
        raise ValueError("no images to stack")
    sizes = [(int(r.rgb.shape[0]), int(r.rgb.shape[1])) for r in results]
    height = max(h for h, _ in sizes)
    width = max(w for _, w in sizes)
    images = np.zeros((len(results), height, width, 3), dtype=np.uint8)
    masks = np.zeros((len(results), height, width), dtype=np.uint8)
    for i, r in enumerate(results):
        rgb = np.asarray(r.rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"result {i}: expected uint8 HxWx3 RGB, got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        top, left = (height - h) // 2, (width - w) // 2
        images[i, top : top + h, left : left + w] = rgb
        alpha = r.alpha
        if alpha is None:
            masks[i, top : top + h, left : left + w] = 255
        else:
            masks[i, top : top + h, left : left + w] = np.asarray(alpha, dtype=np.uint8).reshape(h, w)
    image_t = torch.from_numpy(images).to(torch.float32).div_(255.0)
    mask_t = torch.from_numpy(masks).to(torch.float32).div_(255.0)
    return image_t, mask_t
