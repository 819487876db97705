"""What a finished node run tells the browser: previews and a truthful final state.

A run ends in one of four states, shown on the node by the web extension
(``web/scenario_results.js``) in both renderers and on every frontend version:

* ``done``: the cost and the job id(s) and asset ids of the jobs that ran;
* ``reused``: an earlier result was served (nothing new was billed);
* ``canceled``: Stop (or ComfyUI ending the prompt); the job ids Scenario was
  asked to cancel;
* ``failed``: the node's error text (Scenario's reason and hint included).

The state travels two ways, both carrying the same JSON object
(:func:`final_state`): the pack's websocket event ``scenario.result`` (sent for
every state, right before the node returns or raises), and, for ``done``, the
``scenario`` entry of the node's ``ui`` payload next to ComfyUI's own
``images`` previews, so a cache hit re-sends it too. Only ids, costs, sizes
and texts that are already shown on the node go in: never a URL or a secret.

Previews are the decoded result images saved as PNGs in ComfyUI's temp folder
(``bridge.save_previews``), the same way ComfyUI's PreviewImage node does; the
frontend shows them on the node (``ui.images``). The generate nodes are not
output nodes: an unconnected generate node must not run (and bill) by itself.
"""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..scenario_api import ScenarioError, imaging
from . import bridge

log = logging.getLogger("scenario_controlnet")

RESULT_EVENT = "scenario.result"
UI_KEY = "scenario"
DONE, REUSED, CANCELED, FAILED = "done", "reused", "canceled", "failed"
MAX_PREVIEWS = 64  # a huge batch still shows its first images
MAX_REASON = 2000


def final_state(
    state: str,
    *,
    node: str | None = None,
    cost: float | None = None,
    job_ids: Sequence[str] = (),
    asset_ids: Sequence[str] = (),
    sizes: Sequence[tuple[int, int]] = (),
    reason: str | None = None,
    hint: str | None = None,
) -> dict[str, Any]:
    """The JSON object of a final state (see the module docstring)."""
    out: dict[str, Any] = {"state": state, "node": node, "job_ids": list(job_ids), "asset_ids": list(asset_ids)}
    if cost is not None:
        out["cost"] = round(float(cost), 6)
    if sizes:
        out["sizes"] = [[int(w), int(h)] for w, h in sizes]
    if reason:
        out["reason"] = reason[:MAX_REASON]
    if hint:
        out["hint"] = hint[:MAX_REASON]
    return out


def file_sizes(files: Sequence[bytes]) -> list[tuple[int, int]]:
    """``(width, height)`` of each image file, read from its header only (nothing decoded)."""
    from PIL import Image  # ComfyUI ships Pillow

    sizes = []
    for data in files:
        try:
            with Image.open(io.BytesIO(data)) as img:
                sizes.append((int(img.width), int(img.height)))
        except Exception:  # noqa: BLE001 - sizes only feed the status line; a bad file fails the decode anyway
            continue
    return sizes


_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


async def save_previews(files: Sequence[bytes], node: str | None) -> list[dict[str, str]]:
    """ComfyUI ``ui.images`` entries for the downloaded image ``files`` (written as they are to the temp folder).

    The files are Scenario's own PNG/JPEG/WebP bytes, so nothing is re-encoded. Outside ComfyUI: ``[]``.
    """
    if not files or bridge.temp_directory() is None:
        return []
    shown = list(files)[:MAX_PREVIEWS]
    stem = f"scenario_{node or 'node'}_{uuid.uuid4().hex[:10]}"
    stem = "".join(c if c.isalnum() or c in "_-" else "_" for c in stem)
    named = [
        (f"{stem}_{i:03d}.{_EXTENSIONS.get(imaging.sniff_mime(data) or '', 'png')}", data)
        for i, data in enumerate(shown)
    ]
    return await asyncio.to_thread(bridge.save_previews, named)


def _is_cancel(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError) or bridge.is_interrupt(exc)


@dataclass
class RunReport:
    """Collects what a node run did (jobs, costs, sizes) and tells the browser how it ended.

    ``board`` is the run's :class:`nodes.status.StatusBoard` once jobs were
    submitted (it knows their ids and costs, also when the run is cut short).
    """

    node: str | None
    board: Any = None
    sizes: list[tuple[int, int]] = field(default_factory=list)
    reused: bool = False

    def _jobs(self) -> tuple[list[str], float | None]:
        views = list(getattr(self.board, "views", None) or [])
        ids = [v.job_id for v in views if getattr(v, "job_id", None)]
        costs = [v.cost for v in views if getattr(v, "cost", None) is not None]
        return ids, (sum(costs) if costs else None)

    def done(self, job_ids: Sequence[str], asset_ids: Sequence[str], cost: float | None = None) -> dict[str, Any]:
        """Tell the browser the run succeeded; ``cost`` defaults to the jobs' own costs (or their quoted ones)."""
        if cost is None:
            cost = self._jobs()[1]
        state = final_state(
            REUSED if self.reused else DONE,
            node=self.node,
            cost=cost,
            job_ids=job_ids,
            asset_ids=asset_ids,
            sizes=self.sizes,
        )
        bridge.send_event(RESULT_EVENT, state)
        return state

    def ended(self, exc: BaseException) -> dict[str, Any]:
        """Tell the browser a run ended with ``exc`` (canceled or failed); the caller re-raises it."""
        ids, cost = self._jobs()
        if _is_cancel(exc):
            state = final_state(CANCELED, node=self.node, cost=cost, job_ids=ids, sizes=self.sizes)
            text = "canceled" + (f" | cancel sent for {', '.join(ids)}" if ids else "")
        else:
            reason = str(exc) if isinstance(exc, Exception) else type(exc).__name__
            hint = getattr(exc, "hint", None) if isinstance(exc, ScenarioError) else None
            state = final_state(FAILED, node=self.node, cost=cost, job_ids=ids, reason=reason, hint=hint)
            text = "failed" + (f" | {', '.join(ids)}" if ids else "")
        # 1.27 keeps the last progress text forever ("generating 20%" after Stop): end it truthfully.
        bridge.Progress(self.node).text(text)
        bridge.send_event(RESULT_EVENT, state)
        return state


def ui_payload(previews: list[dict[str, str]], state: dict[str, Any]) -> dict[str, list[Any]]:
    """The node's ``ui`` payload: ComfyUI's ``images`` previews and the pack's final state (lists, as ComfyUI wants)."""
    ui: dict[str, list[Any]] = {UI_KEY: [state]}
    if previews:
        ui["images"] = previews
    return ui
