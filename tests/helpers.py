"""Small image helpers for tests (Pillow + numpy only, independent of the pack's imaging code).

from helpers import make_png, data_url, decode_png
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageDraw

PATTERNS = ("shapes", "edges", "gradient", "checker", "solid", "noise")


def make_array(width: int = 64, height: int = 64, pattern: str = "shapes", *, seed: int = 0) -> np.ndarray:
    """An HxW uint8 gray test map.

    shapes: filled white rectangle and disc on black; edges: their outlines;
    gradient: left-to-right ramp; checker: 8 px squares; solid: mid gray;
    noise: seeded uniform noise.
    """
    if pattern in ("shapes", "edges"):
        img = Image.new("L", (width, height), 0)
        d = ImageDraw.Draw(img)
        box = [width * 0.1, height * 0.15, width * 0.45, height * 0.8]
        disc = [width * 0.55, height * 0.3, width * 0.9, height * 0.65]
        if pattern == "shapes":
            d.rectangle(box, fill=255)
            d.ellipse(disc, fill=255)
        else:
            d.rectangle(box, outline=255, width=max(1, width // 64))
            d.ellipse(disc, outline=255, width=max(1, width // 64))
        return np.asarray(img, dtype=np.uint8)
    if pattern == "gradient":
        return np.tile(np.linspace(0, 255, width, dtype=np.float32), (height, 1)).astype(np.uint8)
    if pattern == "checker":
        ys, xs = np.mgrid[0:height, 0:width]
        return (((ys // 8 + xs // 8) % 2) * 255).astype(np.uint8)
    if pattern == "solid":
        return np.full((height, width), 128, dtype=np.uint8)
    if pattern == "noise":
        return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    raise ValueError(f"pattern must be one of {PATTERNS}")


def make_png(width: int = 64, height: int = 64, pattern: str = "shapes", *, mode: str = "L", seed: int = 0) -> bytes:
    """PNG bytes of :func:`make_array`; ``mode`` "L", "RGB" or "RGBA"."""
    img = Image.fromarray(make_array(width, height, pattern, seed=seed)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_jpeg(width: int = 64, height: int = 64, pattern: str = "gradient") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(make_array(width, height, pattern)).convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def decode_png(data: bytes) -> np.ndarray:
    """HxWx3 uint8 pixels of image bytes (for assertions)."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def fast_client(settings, **kw):
    """A ScenarioClient with test-speed retries and polling (override any option by keyword)."""
    from scenario_api import RetryPolicy, ScenarioClient

    kw.setdefault("retry", RetryPolicy.fast())
    kw.setdefault("poll_interval", 0.03)
    kw.setdefault("reconcile_interval", 0.1)
    return ScenarioClient(settings, **kw)


async def wait_until(cond, timeout: float = 3.0) -> None:
    """Poll ``cond()`` until it is true; fail the test after ``timeout`` seconds."""
    import asyncio
    import time

    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
