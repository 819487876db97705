"""Codec figures: decode into IMAGE, encode an edge map, encode a natural init image.

Baselines, written out plainly here (never imported from the pack):

* **typical decode** (what API nodes usually do): Pillow open -> ``convert("RGB")``
  -> ``np.array(float32) / 255`` -> ``torch.from_numpy(...)[None]``;
* **decode floor**: Pillow decode + one numpy pass (uint8 -> float32 / 255 into
  the final ``torch.empty`` tensor);
* **anchor encode** (typical API nodes, like ComfyUI's own helpers): float ->
  ``(x * 255)`` -> RGB PNG at Pillow's default level -> base64;
* **encode floor** (maps): uint8, single channel, PNG level 1 -> base64.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

from . import images
from .common import Options, Row, Section, fmt_ms, interleaved, median, ratio

# --------------------------------------------------------------------------- baselines


def typical_decode(png: bytes) -> torch.Tensor:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    arr = np.array(image).astype(np.float32) / 255.0
    return torch.from_numpy(arr)[None,]


def floor_decode(png: bytes) -> torch.Tensor:
    image = Image.open(io.BytesIO(png))
    image.load()
    out = torch.empty((1, image.height, image.width, 3), dtype=torch.float32)
    np.divide(np.asarray(image), np.float32(255.0), out=out.numpy()[0], casting="unsafe")
    return out


def anchor_encode(t: torch.Tensor) -> str:
    arr = np.clip(255.0 * t[0].cpu().numpy(), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")  # Pillow's default level (zlib 6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def floor_encode_map(t: torch.Tensor) -> str:
    arr = (t[0, :, :, 0] * 255.0).round().to(torch.uint8).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L").save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- the pack


def _pack():  # type: ignore[no-untyped-def]
    from pack_loader import submodule

    return submodule("nodes.tensors"), submodule("scenario_api.imaging")


def pack_decode(png: bytes) -> torch.Tensor:
    """What the nodes do with a downloaded file (Fetch Asset and the generate nodes)."""
    tensors, _ = _pack()
    return tensors.decode_to_tensors([png])[0]


def pack_encode(t: torch.Tensor, fmt: str = "png", quality: int | None = None) -> str:
    """What the nodes do with an IMAGE before upload: tensor -> uint8 -> encoded bytes -> data URL."""
    tensors, imaging = _pack()
    arr = tensors.image_to_arrays(t, "image")[0]
    encoded = imaging.encode_image(arr, format=fmt, quality=quality)
    return imaging.to_data_url(encoded.data, encoded.mime)


def _payload_bytes(data_url: str) -> int:
    return len(base64.b64decode(data_url.partition(",")[2]))


# --------------------------------------------------------------------------- section


FAST_RUNS = 15  # codec figures take milliseconds: more runs, for a median that noise moves less


def run(opts: Options) -> Section:
    section = Section("codecs")
    runs = 1 if opts.quick else max(opts.runs, FAST_RUNS)
    _pack()
    if not opts.quick:
        section.notes.append(f"codecs: median of {runs} runs (figures of milliseconds), order turned every round.")

    for size in (256, 512) if opts.quick else (1024, 2048):
        png = images.result_png(size)
        assert torch.equal(pack_decode(png), floor_decode(png))  # same pixels, or the timing means nothing
        t = interleaved(
            runs,
            {
                "pack": lambda png=png: pack_decode(png),
                "floor": lambda png=png: floor_decode(png),
                "typical": lambda png=png: typical_decode(png),
            },
        )
        p, f, ty = median(t["pack"]), median(t["floor"]), median(t["typical"])
        section.rows.append(
            Row(
                "codecs",
                f"Decode a {size}^2 PNG into IMAGE [1,H,W,3]",
                f"{fmt_ms(p)} = {ratio(p, f):.2f}x floor",
                f"floor {fmt_ms(f)}; typical {fmt_ms(ty)} ({ratio(ty, f):.2f}x)",
                "<= 1.05x the floor",
                ratio(p, f) <= 1.05,
            )
        )

    size = 256 if opts.quick else 1024
    edge = images.as_image_tensor(images.edge_array(size))
    t = interleaved(
        runs,
        {
            "pack": lambda: pack_encode(edge),
            "floor": lambda: floor_encode_map(edge),
            "anchor": lambda: anchor_encode(edge),
        },
    )
    pb, fb, ab = (_payload_bytes(fn(edge)) for fn in (pack_encode, floor_encode_map, anchor_encode))
    p, f, a = median(t["pack"]), median(t["floor"]), median(t["anchor"])
    section.rows.append(
        Row(
            "codecs",
            f"Encode a binary edge map ({size}^2) to an upload-ready data URL",
            f"{fmt_ms(p)} = {ratio(p, f):.2f}x floor; {pb / 1024:.0f} KiB = {ratio(pb, ab):.2f}x anchor bytes",
            f"floor {fmt_ms(f)} ({fb / 1024:.0f} KiB); anchor {fmt_ms(a)} ({ab / 1024:.0f} KiB)",
            "<= 1.5x floor time, <= anchor bytes",
            ratio(p, f) <= 1.5 and pb <= ab,
        )
    )

    size = 512 if opts.quick else 2048
    photo = images.as_image_tensor(images.natural_array(size))
    contenders = {
        "pack": lambda: pack_encode(photo),
        "anchor": lambda: anchor_encode(photo),
        "jpeg": lambda: pack_encode(photo, "jpeg", 90),
        "webp": lambda: pack_encode(photo, "webp", 90),
    }
    t = interleaved(runs, contenders)
    sizes = {name: _payload_bytes(fn()) for name, fn in contenders.items()}
    p, a = median(t["pack"]), median(t["anchor"])
    section.rows.append(
        Row(
            "codecs",
            f"Encode a natural {size}^2 init image, lossless",
            f"{fmt_ms(p)} ({ratio(a, p):.1f}x faster); {sizes['pack'] / 2**20:.2f} MiB = "
            f"{ratio(sizes['pack'], sizes['anchor']):.2f}x anchor bytes",
            f"anchor {fmt_ms(a)}, {sizes['anchor'] / 2**20:.2f} MiB",
            ">= 2x faster at <= 1.2x bytes",
            ratio(a, p) >= 2.0 and sizes["pack"] <= 1.2 * sizes["anchor"],
        )
    )
    for name, label in (("jpeg", "JPEG q90"), ("webp", "WebP q90")):
        v = median(t[name])
        section.rows.append(
            Row(
                "codecs",
                f"Same init image, opt-in lossy ({label})",
                f"{fmt_ms(v)}; {sizes[name] / 2**20:.2f} MiB = {ratio(sizes[name], sizes['anchor']):.2f}x anchor bytes",
                f"anchor {fmt_ms(a)}, {sizes['anchor'] / 2**20:.2f} MiB",
                "reported (opt-in)",
                None,
            )
        )
    return section
