"""Scenario Upload Asset: put images (e.g. control maps) on Scenario once, get asset ids.

One asset per batch item, through the same per-process upload cache the
generate nodes use: an image already uploaded in this ComfyUI session (same
account and endpoint) is not sent again. Feed the ids to the generate
nodes' ``control_image_id`` / ``image_id`` to run many generations from one
upload, or keep them to reuse maps across sessions. Uploading costs no
creative units.
"""

from __future__ import annotations

import asyncio
from typing import Any

from . import bridge, inputs, stack
from .errors import node_errors
from .ids import join_ids

DEFAULT_NAME = "comfyui-control"


class ScenarioUploadAsset:
    CATEGORY = "Scenario"
    FUNCTION = "upload"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("asset_ids",)
    OUTPUT_TOOLTIPS = ("The Scenario asset ids, one per batch item, comma-separated in batch order.",)
    DESCRIPTION = (
        "Upload images to Scenario as assets (one per batch item, each distinct image once per session) and "
        "output their ids, for the generate nodes' control_image_id / image_id. Free."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "image": (
                    "IMAGE",
                    {"tooltip": "Image(s) to upload; gray maps (R = G = B) are sent as single-channel PNGs."},
                ),
                "name": (
                    "STRING",
                    {
                        "default": DEFAULT_NAME,
                        "tooltip": "Asset name shown in the Scenario app (a batch gets -1, -2... suffixes).",
                    },
                ),
            },
            "hidden": dict(inputs.HIDDEN),
        }

    async def upload(self, image: Any, name: str = DEFAULT_NAME, unique_id: str | None = None) -> tuple[str]:
        async with node_errors():
            arrays = await asyncio.to_thread(stack.tensors.image_to_arrays, image, "image")
            settings = stack.resolve_settings()
            progress = bridge.Progress(unique_id)
            progress.text(f"uploading {len(arrays)} image(s)")
            base = (name or "").strip() or DEFAULT_NAME
            names = [base] if len(arrays) == 1 else [f"{base}-{i + 1}" for i in range(len(arrays))]
            async with stack.shared_client(settings) as client:
                srcs = [stack.plan.Source(array=a) for a in arrays]
                ids = await stack.plan.resolve_ids(client, settings, srcs, names)
            text = join_ids(ids)
            progress.update(1.0)
            progress.text(text)
            return (text,)
