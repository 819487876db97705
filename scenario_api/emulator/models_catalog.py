"""The emulator's fixed model catalog.

A few public base models of each rule family, one Flux LoRA and the 2026-style
custom Flux model (which the legacy ControlNet endpoints must refuse), enough
for the client and the nodes to exercise every branch of ``spec.family_of``.
"""

from __future__ import annotations

import copy
from typing import Any

_BASE_CAPS = ["txt2img", "img2img", "controlnet", "controlnet_img2img"]

_CATALOG: tuple[dict[str, Any], ...] = (
    {"id": "flux.1-dev", "name": "Flux.1 [dev]", "type": "flux.1", "custom": False, "capabilities": _BASE_CAPS},
    {"id": "flux.1-schnell", "name": "Flux.1 [schnell]", "type": "flux.1", "custom": False,
     "capabilities": _BASE_CAPS},
    {"id": "stable-diffusion-xl-base-1.0", "name": "SDXL 1.0", "type": "sd-xl", "custom": False,
     "capabilities": _BASE_CAPS},
    {"id": "stable-diffusion-v1-5", "name": "Stable Diffusion 1.5", "type": "sd-1_5", "custom": False,
     "capabilities": _BASE_CAPS},
    {"id": "model_bfl-flux-1-dev", "name": "Flux.1 Dev (custom path)", "type": "custom", "custom": True,
     "capabilities": ["txt2img", "img2img", "controlnet", "outpaint"]},
    {"id": "model_demo-flux-lora", "name": "Demo Flux LoRA", "type": "flux.1-lora", "custom": False,
     "capabilities": _BASE_CAPS, "compliantModelIds": ["flux.1-dev"]},
)

_BY_ID = {m["id"]: m for m in _CATALOG}


def _full(model: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(model)
    out.update({"status": "trained", "privacy": "public", "tags": []})
    return out


def get_model(model_id: str) -> dict[str, Any] | None:
    """The ``GET /models/{id}`` record, or None."""
    model = _BY_ID.get(model_id)
    return _full(model) if model else None


def list_models() -> list[dict[str, Any]]:
    """Rows for ``GET /models`` (the real list carries no ``inputs`` either)."""
    return [_full(m) for m in _CATALOG]
