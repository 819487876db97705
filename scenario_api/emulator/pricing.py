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
