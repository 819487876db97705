"""Deterministic test pictures for the bench: a generated result, a binary edge map, a natural-looking photo.

No data set is downloaded. The "natural" picture is synthetic: 1/f^1.8
(pink-ish) noise per colour channel with shared structure plus faint sensor
noise, which compresses like a photograph (PNG level 1 costs ~15 % more bytes
than level 6, as on real photos), not like a flat test card.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def result_png(size: int, seed: int = 1) -> bytes:
    """A Scenario-like RGB result PNG, made by the emulator's renderer from an edge map."""
    from scenario_api.emulator.render import RenderSpec, render

    control = edge_array(size, seed)
    spec = RenderSpec(
        prompt="bench",
        modality="canny",
        model_id="flux.1-dev",
        seed=seed,
        sample_index=0,
        width=size,
        height=size,
        control=control,
    )
    return render(spec)


def edge_array(size: int, seed: int = 0) -> np.ndarray:
    """An HxW uint8 binary edge map (0/255 outlines of random shapes), like a Canny preprocessor's output."""
    rng = np.random.default_rng(seed)
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x0, y0 = rng.integers(0, size, 2)
        w, h = rng.integers(size // 20, size // 3, 2)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        kind = rng.integers(0, 3)
        width = max(1, size // 512)
        if kind == 0:
            draw.rectangle(box, outline=255, width=width)
        elif kind == 1:
            draw.ellipse(box, outline=255, width=width)
        else:
            draw.line(box, fill=255, width=width)
    return np.asarray(img, dtype=np.uint8)


def natural_array(size: int, seed: int = 0) -> np.ndarray:
    """An HxWx3 uint8 photo-like picture (see the module docstring)."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    base = None
    channels = []
    for _ in range(3):
        spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f**1.8
        plane = np.fft.irfft2(spectrum, s=(size, size))
        base = plane if base is None else base
        channels.append(0.8 * base + 0.2 * plane)
    arr = np.stack(channels, axis=-1)
    arr = (arr - arr.mean()) / arr.std() * 45 + 120 + rng.normal(0, 0.5, arr.shape)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def as_image_tensor(arr: np.ndarray):  # type: ignore[no-untyped-def]
    """A ComfyUI IMAGE [1,H,W,3] float32 tensor (gray maps as three equal channels, as Canny nodes output)."""
    import torch

    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return torch.from_numpy(arr.astype(np.float32) / 255.0)[None]


def png_of(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
