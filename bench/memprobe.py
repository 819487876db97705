"""Child process of the memory section: peak RSS growth of one way to turn asset ids into IMAGE + MASK.

    python -m bench.memprobe METHOD[,METHOD...] RUNS BASE_URL ASSET_ID...

Methods:

* ``pack``: the Scenario Fetch Asset node;
* ``floor``: download, then Pillow decode + one numpy pass straight into a
  ``torch.empty`` batch;
* ``comfy``: download, then what ComfyUI's LoadImage does per image (Pillow
  open, ``exif_transpose``, ``convert("RGB")``, ``np.array(float32) / 255``,
  ``torch.from_numpy(...)[None,]``) and ``torch.cat`` of the batch.

Several methods in one process share its heap (the quick mode does that to
save time; the full run gives each its own process). Prints one JSON line:
growth and held-afterwards bytes per run, and the output size, per method.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys

import numpy as np
import torch
from PIL import Image, ImageOps

from .common import DEMO_KEY, DEMO_SECRET, peak_rss, reset_peak, rss, trim_heap


def _download(base_url: str, ids: list[str]) -> list[bytes]:
    from scenario_api import ScenarioClient
    from scenario_api.config import Credentials, Settings

    async def go() -> list[bytes]:
        settings = Settings(base_url=base_url, credentials=Credentials(DEMO_KEY, DEMO_SECRET))
        async with ScenarioClient(settings) as client:
            return list(await asyncio.gather(*(client.download_asset(i) for i in ids)))

    return asyncio.run(go())


def floor(base_url: str, ids: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    blobs = _download(base_url, ids)
    heads = [Image.open(io.BytesIO(b)) for b in blobs]
    h, w = heads[0].height, heads[0].width
    images = torch.empty((len(blobs), h, w, 3), dtype=torch.float32)
    masks = torch.ones((len(blobs), h, w), dtype=torch.float32)
    out = images.numpy()
    for i, image in enumerate(heads):
        image.load()
        np.divide(np.asarray(image), np.float32(255.0), out=out[i], casting="unsafe")
        heads[i] = None  # type: ignore[call-overload]
    return images, masks


def comfy(base_url: str, ids: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    blobs = _download(base_url, ids)
    output_images, output_masks = [], []
    for data in blobs:
        i = Image.open(io.BytesIO(data))
        i = ImageOps.exif_transpose(i)
        image = i.convert("RGB")
        image = np.array(image).astype(np.float32) / 255.0
        output_images.append(torch.from_numpy(image)[None,])
        output_masks.append(torch.ones((1, image.shape[0], image.shape[1]), dtype=torch.float32))
    return torch.cat(output_images, dim=0), torch.cat(output_masks, dim=0)


def pack(base_url: str, ids: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    from pack_loader import FakeComfy, load_pack

    for name, module in FakeComfy().modules.items():
        sys.modules.setdefault(name, module)
    node = load_pack().NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]()
    fn = getattr(node, node.FUNCTION)
    out = asyncio.run(fn(asset_ids=",".join(ids)))
    images, masks = out["result"] if isinstance(out, dict) else out  # ComfyUI's {"ui", "result"} form
    return images, masks


def measure(method: str, runs: int, base_url: str, ids: list[str]) -> dict[str, object]:
    fn = {"pack": pack, "floor": floor, "comfy": comfy}[method]
    fn(base_url, ids[:1])  # warm-up: imports and first-call caches, one image
    growth, held = [], []
    nbytes = 0
    for _ in range(runs):
        trim_heap()
        base = rss()
        reset_peak()
        images, masks = fn(base_url, ids)
        top = peak_rss()
        after = rss()
        nbytes = images.numel() * images.element_size() + masks.numel() * masks.element_size()
        growth.append(top - base)
        held.append(after - base - nbytes)
        del images, masks
    return {"growth": growth, "held": held, "tensor_bytes": nbytes}


def main(argv: list[str]) -> int:
    methods, runs, base_url, *ids = argv
    import os

    os.environ.update({"SCENARIO_API_URL": base_url, "SCENARIO_API_KEY": DEMO_KEY, "SCENARIO_API_SECRET": DEMO_SECRET})
    print(json.dumps({m: measure(m, int(runs), base_url, ids) for m in methods.split(",")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
