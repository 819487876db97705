"""The emulator's fixed model catalog.

A few public base models of each rule family, one Flux LoRA and the 2026-style
custom Flux model (which the legacy ControlNet endpoints must refuse), enough
for the client and the nodes to exercise every branch of ``spec.family_of``.
"""

from __future__ import annotations

import copy
from typing import Any

_BASE_CAPS = ["txt2img", "img2img", "controlnet", "controlnet_img2img"]


def _input(name: str, type_: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **more}


# ``GET /models/model_bfl-flux-1-dev``'s ``inputs``, loosely in the shape Scenario
# publishes for custom models; the emulator validates with spec.validate_custom_body.
_BFL_FLUX_DEV_INPUTS: list[dict[str, Any]] = [
    _input("prompt", "string", required=True, maxLength=2048),
    _input("controlImage", "file", kind="image", description="control image (asset id)"),
    _input(
        "controlModality",
        "options",
        options=["canny", "tile", "depth", "blur", "pose", "gray", "low-quality", "sketch"],
        default="canny",
    ),
    _input("controlStrength", "number", min=0, max=1, default=0.7),
    _input("controlStart", "number", min=0, max=1, default=0),
    _input("controlEnd", "number", min=0, max=1, default=1),
    _input("image", "file", kind="image", description="init image (asset id)"),
    _input("strength", "number", min=0.01, max=1, default=0.8),
    _input("numOutputs", "number", integer=True, min=1, max=4, default=1),
    _input("numInferenceSteps", "number", integer=True, min=1, max=50, default=28),
    _input("width", "number", integer=True, min=128, max=2048, step=16, default=1104),
    _input("height", "number", integer=True, min=128, max=2048, step=16, default=832),
    _input("guidance", "number", min=0, max=10, default=3.5),
    _input("seed", "number", integer=True, min=0, max=2147483647),
]

_CATALOG: tuple[dict[str, Any], ...] = (
    {"id": "flux.1-dev", "name": "Flux.1 [dev]", "type": "flux.1", "custom": False, "capabilities": _BASE_CAPS},
    {"id": "flux.1-schnell", "name": "Flux.1 [schnell]", "type": "flux.1", "custom": False, "capabilities": _BASE_CAPS},
    {
        "id": "stable-diffusion-xl-base-1.0",
        "name": "SDXL 1.0",
        "type": "sd-xl",
        "custom": False,
        "capabilities": _BASE_CAPS,
    },
    {
        "id": "stable-diffusion-v1-5",
        "name": "Stable Diffusion 1.5",
        "type": "sd-1_5",
        "custom": False,
        "capabilities": _BASE_CAPS,
    },
    {
        "id": "model_bfl-flux-1-dev",
        "name": "Flux.1 Dev (custom path)",
        "type": "custom",
        "custom": True,
        "capabilities": ["txt2img", "img2img", "controlnet", "outpaint"],
        "inputs": _BFL_FLUX_DEV_INPUTS,
    },
    {
        "id": "model_demo-custom-txt2img",
        "name": "Demo custom model without ControlNet",
        "type": "custom",
        "custom": True,
        "capabilities": ["txt2img"],
    },
    {
        "id": "model_demo-flux-lora",
        "name": "Demo Flux LoRA",
        "type": "flux.1-lora",
        "custom": False,
        "capabilities": _BASE_CAPS,
        "compliantModelIds": ["flux.1-dev"],
    },
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
    rows = [_full(m) for m in _CATALOG]
    for row in rows:
        row.pop("inputs", None)
    return rows
