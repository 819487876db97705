"""Scenario Fetch Asset: download Scenario assets as IMAGE + MASK (free).

Takes the ids every other node outputs (comma-separated), or ids typed or
pasted one per line or as a JSON list. Downloads run concurrently from
Scenario's CDN without credentials (signed URLs, fetched fresh for each
asset). Images of different sizes are padded, centred, to the largest width
and height; the MASK is 1 on the asset's opaque pixels, its alpha where it
is translucent, and 0 in the padding (see ``tensors``).

No ``IS_CHANGED``: an asset never changes, so ComfyUI's cache is correct.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..scenario_api import ValidationError
from . import bridge, inputs, stack
from .errors import node_errors, prefixed
from .ids import parse_ids, split_ids

if TYPE_CHECKING:  # what the node runs loads on first use (nodes/stack.py)
    from .results import RunReport

EMPTY_HINT = (
    "asset ids such as 'asset_abc,asset_def' (comma, new line or JSON list). If they come from Scenario Poll "
    "Job, the job had not finished yet: queue the workflow again later"
)


class ScenarioFetchAsset:
    CATEGORY = "Scenario"
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("images", "masks")
    OUTPUT_TOOLTIPS = (
        "The assets as one IMAGE batch, in id order. " + inputs.MIXED_SIZES_NOTE,
        (
            "Per image: 1 on opaque pixels, the alpha value on translucent ones, 0 in padding (the inverse of "
            "LoadImage's mask convention; use InvertMask to convert)."
        ),
    )
    DESCRIPTION = (
        "Download Scenario assets (generated images or uploads) by id. Free; works with the ids output by the "
        "generate nodes, Scenario Poll Job or Scenario Upload Asset."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "asset_ids": (
                    "STRING",
                    {
                        "default": "",
                        "forceInput": False,
                        "tooltip": "Scenario asset id(s) (asset_...), typed or linked: comma-separated, one per "
                        "line, or a JSON list.",
                    },
                ),
            },
            "hidden": dict(inputs.HIDDEN),
        }

    @classmethod
    def VALIDATE_INPUTS(cls, asset_ids: Any = None) -> bool | str:
        if asset_ids is None:
            return True
        try:
            parse_ids(asset_ids, "asset", "asset_ids")
        except ValidationError as exc:
            return prefixed(str(exc))
        return True

    async def run(self, asset_ids: str, unique_id: str | None = None) -> dict[str, Any]:
        """ComfyUI's entry point: the outputs plus the ``ui`` payload (previews and the final state)."""
        result, ui = await self._run(asset_ids, unique_id)
        return {"ui": ui, "result": result}

    async def fetch(self, asset_ids: str, unique_id: str | None = None) -> tuple[Any, Any]:
        """Download the assets and return ``images`` and ``masks`` only."""
        result, _ui = await self._run(asset_ids, unique_id)
        return result

    async def _run(self, asset_ids: str, unique_id: str | None) -> tuple[tuple[Any, Any], dict[str, Any]]:
        report = stack.RunReport(None if unique_id is None else str(unique_id))
        try:
            return await self._fetch(report, asset_ids, unique_id)
        except BaseException as exc:
            report.ended(exc)
            raise

    async def _fetch(
        self, report: RunReport, asset_ids: str, unique_id: str | None
    ) -> tuple[tuple[Any, Any], dict[str, Any]]:
        async with node_errors():
            if not split_ids(asset_ids):
                raise ValidationError("asset_ids", asset_ids, EMPTY_HINT, param="asset_ids")
            ids = parse_ids(asset_ids, "asset", "asset_ids")
            settings = stack.resolve_settings()
            progress = bridge.Progress(unique_id)
            progress.text(f"downloading {len(ids)} asset(s)")
            async with stack.shared_client(settings) as client:
                files = await stack.download_files(client, ids)
            images, masks = await asyncio.to_thread(stack.tensors.decode_to_tensors, files)
            progress.update(1.0)
            progress.text(f"downloaded {len(ids)} asset(s)")
            report.sizes = stack.file_sizes(files)
            state = report.done([], ids, 0.0)  # downloads are free
            previews = await stack.save_previews(files, report.node)
            del files
            return (images, masks), stack.ui_payload(previews, state)
