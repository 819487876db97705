"""Deterministic stand-in "generations" that visibly follow the control map.

The output is a two-colour image: the control map's luminance (resized to the
output size) blends a dark and a bright colour, and a faint wave pattern is
laid over it. Colours and pattern come from sha256(prompt, modality, modelId,
seed, sample index), so the same request and seed give identical bytes, while
any change of seed, prompt, modality or sample changes the pixels. img2img
mixes the init image in with weight ``1 - strength``.

Everything is numpy on whole arrays and PNG level-1 compression, so a 1024²
sample takes a few tens of milliseconds; PNG files carry no timestamps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

NEUTRAL_GRAY = 128
MAX_DECODED_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class RenderSpec:
    """All inputs of one output sample. Arrays are uint8 and never mutated."""

    prompt: str
    modality: str
    model_id: str
    seed: int
    sample_index: int
    width: int
    height: int
    control: np.ndarray | None = None  # HxW gray map, any size
    init: np.ndarray | None = None  # HxWx3 init image, any size
    strength: float = 1.0


# --------------------------------------------------------------------------- decoding


def decode_base64_image(text: str) -> bytes:
    """Bytes of a ``data:image/...;base64,`` URL or of bare base64; ValueError if neither."""
    payload = text
    if text.startswith("data:"):
        head, sep, payload = text.partition(",")
        if not sep or ";base64" not in head:
            raise ValueError("not a base64 data URL")
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None


def open_image(data: bytes) -> Image.Image:
    """A fully loaded Pillow image, or ValueError for anything undecodable or huge."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_DECODED_PIXELS:
            raise ValueError(f"image too large ({img.width}x{img.height})")
        img.load()
        return img
    except ValueError:
        raise
    except Exception as exc:  # Pillow raises many types for bad data
        raise ValueError(f"not a decodable image ({type(exc).__name__})") from None


def to_gray(img: Image.Image) -> np.ndarray:
    """Brightness (max of R, G, B) of an image as HxW uint8; transparency counts as black.

    The max rather than luminance keeps saturated pose-map limbs (pure blue has
    a luminance near 0.1) as visible as white edges.
    """
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, rgba)
    if img.mode.startswith("I") or img.mode == "F":  # 16-bit depth maps: scale, don't clip
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        return np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if img.mode in ("L", "1"):
        return np.asarray(img.convert("L"), dtype=np.uint8)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).max(axis=2)


def to_rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def encode_png(arr: np.ndarray) -> bytes:
    """PNG bytes of an HxW or HxWx3 uint8 array (fast, deterministic)."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.width, img.height


# --------------------------------------------------------------------------- rendering


def _key(spec: RenderSpec) -> bytes:
    material = json.dumps([spec.prompt, spec.modality, spec.model_id, spec.seed, spec.sample_index])
    return hashlib.sha256(material.encode("utf-8")).digest()


def _resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    if arr.shape[1] == width and arr.shape[0] == height:
        return arr
    return np.asarray(Image.fromarray(arr).resize((width, height), Image.Resampling.BILINEAR))


def render(spec: RenderSpec) -> bytes:
    """The PNG of one sample."""
    w, h = spec.width, spec.height
    k = _key(spec)
    dark = np.array([k[0], k[1], k[2]], dtype=np.float32) * (90.0 / 255.0)
    bright = 165.0 + np.array([k[3], k[4], k[5]], dtype=np.float32) * (90.0 / 255.0)

    if spec.control is None:
        mask = np.full((h, w), NEUTRAL_GRAY / 255.0, dtype=np.float32)
    else:
        mask = _resize(spec.control, w, h).astype(np.float32) / 255.0

    angle = (int.from_bytes(k[6:8], "big") / 65535.0) * math.pi
    cycles = 2.0 + k[8] / 255.0 * 10.0
    phase = int.from_bytes(k[9:11], "big") / 65535.0 * 2 * math.pi
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    wave = np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * (2 * math.pi * cycles) + phase)
    cx, cy = k[11] / 255.0, k[12] / 255.0
    rings = np.cos(np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) * (2 * math.pi * (3 + k[13] % 6)))
    texture = (wave * 12.0 + rings * 6.0)[:, :, None]

    out = dark + (bright - dark) * mask[:, :, None] + texture
    if spec.init is not None:
        keep = 1.0 - float(spec.strength)
        init = _resize(spec.init, w, h).astype(np.float32)
        out = out * (1.0 - keep) + init * keep
    return encode_png(np.clip(out + 0.5, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- demo maps


def demo_pose(size: int = 512) -> bytes:
    """A stick figure in OpenPose-like colours on black."""
    img = Image.new("RGB", (size, size), (0, 0, 0))
    d = ImageDraw.Draw(img)
    s = size / 512
    pt = {
        "head": (256, 100),
        "neck": (256, 160),
        "hip": (256, 300),
        "lhand": (170, 250),
        "rhand": (350, 120),
        "lelbow": (200, 200),
        "relbow": (310, 150),
        "lknee": (215, 380),
        "rknee": (300, 385),
        "lfoot": (200, 460),
        "rfoot": (330, 460),
    }
    p = {k: (x * s, y * s) for k, (x, y) in pt.items()}
    limbs = [
        ("neck", "hip", (0, 0, 255)),
        ("neck", "lelbow", (255, 85, 0)),
        ("lelbow", "lhand", (255, 170, 0)),
        ("neck", "relbow", (85, 255, 0)),
        ("relbow", "rhand", (0, 255, 0)),
        ("hip", "lknee", (0, 255, 170)),
        ("lknee", "lfoot", (0, 255, 255)),
        ("hip", "rknee", (170, 0, 255)),
        ("rknee", "rfoot", (255, 0, 170)),
        ("head", "neck", (255, 0, 0)),
    ]
    for a, b, colour in limbs:
        d.line([p[a], p[b]], fill=colour, width=max(2, int(10 * s)))
    r = 8 * s
    for x, y in p.values():
        d.ellipse([x - r, y - r, x + r, y + r], fill=(255, 255, 255))
    return encode_png(np.asarray(img))


def demo_canny(size: int = 512) -> bytes:
    """White outlines of a few shapes on black, like a Canny edge map."""
    img = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(img)
    s = size / 512
    w = max(1, int(3 * s))
    d.rectangle([60 * s, 80 * s, 230 * s, 250 * s], outline=255, width=w)
    d.ellipse([280 * s, 70 * s, 460 * s, 250 * s], outline=255, width=w)
    d.polygon([(256 * s, 290 * s), (120 * s, 470 * s), (392 * s, 470 * s)], outline=255, width=w)
    return encode_png(np.asarray(img))


def demo_depth(size: int = 512) -> bytes:
    """A near sphere in front of a receding floor, as a depth map (bright = near)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    floor = ys * 160.0
    dist = np.sqrt((xs - 0.5) ** 2 + (ys - 0.45) ** 2)
    sphere = np.where(dist < 0.25, 255.0 * np.sqrt(np.clip(1 - (dist / 0.25) ** 2, 0, 1)), 0.0)
    return encode_png(np.clip(np.maximum(floor, sphere), 0, 255).astype(np.uint8))
