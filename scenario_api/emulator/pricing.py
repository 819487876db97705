"""A deterministic price for a ControlNet request, in creative units (CU).

    cost = base(family) × numSamples × (numInferenceSteps / 28) × (width × height / 1024²)

rounded to 2 decimals, at least 0.01. Bases: Flux 5, SDXL 3, SD 1.5 2 (so one
1024² Flux image at 28 steps costs 5 CU, the Guide's example price). img2img
costs the same as txt2img. Missing fields take the Guide defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import spec

BASE_CU = {spec.FLUX: 5.0, spec.SDXL: 3.0, spec.SD15: 2.0}
REFERENCE_STEPS = 28
REFERENCE_PIXELS = 1024 * 1024


def cost_of(body: Mapping[str, Any], family: str) -> float:
    """Price of a validated, normalised body."""
    samples = int(body.get("numSamples") or spec.DEFAULTS["numSamples"])
    steps = int(body.get("numInferenceSteps") or spec.DEFAULTS["numInferenceSteps"])
    width = int(body.get("width") or spec.DEFAULTS["width"])
    height = int(body.get("height") or spec.DEFAULTS["height"])
    base = BASE_CU.get(family, BASE_CU[spec.FLUX])
    raw = base * samples * (steps / REFERENCE_STEPS) * (width * height / REFERENCE_PIXELS)
    return max(0.01, round(raw, 2))


def cost_details(cost: float, endpoint: str) -> dict[str, float]:
    """The ``costDetails`` breakdown of a quote (one line item)."""
    return {f"{endpoint}-generation": cost}


# --------------------------------------------------------------------------- the custom path
#
# Shaped like the recorded dry runs (HTTP 269): ``costDetails`` has a
# ``custom-generation`` line and a fixed ``quality-gate`` line. Only inputs the
# model declares with ``costImpact: true`` move the price:
#
#     custom-generation = base(model) x outputs x (steps / default steps)
#
# so a prompt-only body on model_bfl-flux-1-dev costs 9 + 1.75 = 10.75 CU, as
# recorded; LoRAs do not change it (recorded). The bases other than Flux's 9 are
# the emulator's own numbers.

QUALITY_GATE_CU = 1.75
CUSTOM_BASE_CU = {"model_bfl-flux-1-dev": 9.0, "model_z-image": 4.0, "model_emu-sketchnet": 3.0}
CUSTOM_BASE_DEFAULT = 6.0


def custom_cost(model: Any, body: Mapping[str, Any]) -> tuple[float, dict[str, float]]:
    """``(creativeUnitsCost, costDetails)`` of a validated custom body for a ``DeclaredModel``."""

    def factor(role: str) -> float:
        d = model.role(role)
        if d is None or not d.cost_impact:
            return 1.0
        value = body.get(d.name, d.default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            return 1.0
        if role == "steps":
            ref = d.default if isinstance(d.default, (int, float)) and d.default > 0 else REFERENCE_STEPS
            return float(value) / float(ref)
        return float(value)

    base = CUSTOM_BASE_CU.get(model.model_id, CUSTOM_BASE_DEFAULT)
    generation = max(0.01, round(base * factor("num_outputs") * factor("steps"), 2))
    total = round(generation + QUALITY_GATE_CU, 2)
    return total, {"custom-generation": generation, "quality-gate": QUALITY_GATE_CU}
