"""What the frontend, the model picker and the docs are told about a custom model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .model import DeclaredModel, describe_inputs

# The legacy endpoints' price depends on these widgets (see emulator pricing and Scenario's quotes).
LEGACY_PRICE_INPUTS = ("model_id", "num_samples", "num_inference_steps", "width", "height")
# Which node widget feeds each role (for the frontend: re-quote when one of them changes).
WIDGET_OF_ROLE = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "control_image": "control_image",
    "modality": "modality",
    "control_scale": "modality_strength",
    "control_start": "control_start",
    "control_end": "control_end",
    "image": "image",
    "strength": "strength",
    "num_outputs": "num_samples",
    "steps": "num_inference_steps",
    "guidance": "guidance",
    "seed": "seed",
    "width": "width",
    "height": "height",
    "loras": "loras",
    "lora_scales": "loras",
    "lora_model": "loras",
}


def price_widgets(model: DeclaredModel) -> tuple[str, ...]:
    """Node widgets whose change can change the price of a custom model (its ``costImpact`` inputs)."""
    roles = model.input_roles()
    out: dict[str, None] = {"model_id": None}
    for name in model.cost_impact_inputs:
        out.setdefault(WIDGET_OF_ROLE.get(roles.get(name, ""), "extra_inputs"), None)
    return tuple(out)


def model_summary(model: DeclaredModel) -> dict[str, Any]:
    """What the frontend needs about a custom model, as JSON: roles, inputs, limits and price inputs.

    ``roles`` maps meanings to the model's input names (``null`` = the model
    has none: e.g. ``modality`` on Z-Image); ``price_inputs`` are the declared
    ``costImpact`` inputs and ``price_widgets`` the node widgets feeding them.
    """
    roles = model.role_map()
    modality = model.role("modality")
    scale = model.role("lora_scales")
    loras = model.role("loras")
    size = {}
    for side in ("width", "height"):
        d = model.role(side)
        if d is not None:
            size[side] = {"input": d.name, "min": d.min, "max": d.max, "step": d.step, "default": d.default}
    unused = [
        WIDGET_OF_ROLE[r]
        for r in ("modality", "control_scale", "control_start", "control_end", "negative_prompt")
        if roles.get(r) is None
    ]
    return {
        "model_id": model.model_id,
        "roles": roles,
        "inputs": describe_inputs(model),
        "modalities": list(modality.allowed_values or ()) if modality else [],
        "size": size,
        "presets": [
            {"label": label, "width": w, "height": h}
            for label, w, h in (model.resolution.presets if model.resolution else ())
        ],
        "loras": None
        if loras is None
        else {
            "input": loras.name,
            "max_items": loras.max_length,
            "model_types": list(loras.model_types),
            "scale_min": scale.min if scale else None,
            "scale_max": scale.max if scale else None,
            "single_input": roles.get("lora_model"),
        },
        "price_inputs": list(model.cost_impact_inputs),
        "price_widgets": list(price_widgets(model)),
        "unused_widgets": unused,
    }


CONTROLNET_CAPABILITY = "controlnet"


def can_do_controlnet(row: Mapping[str, Any]) -> bool:
    """A model row (list or record) that can run ControlNet: bases, LoRAs and compositions alike."""
    caps = row.get("capabilities") if isinstance(row, Mapping) else None
    return isinstance(caps, (list, tuple)) and CONTROLNET_CAPABILITY in caps


def node_table(models: Sequence[DeclaredModel]) -> str:
    """A Markdown table: each generate-node input against the input each model declares for it."""
    rows = [
        ("control_image / control_image_id", "control_image"),
        ("modality", "modality"),
        ("modality_strength", "control_scale"),
        ("control_start", "control_start"),
        ("control_end", "control_end"),
        ("num_samples", "num_outputs"),
        ("num_inference_steps", "steps"),
        ("guidance", "guidance"),
        ("width", "width"),
        ("height", "height"),
        ("seed", "seed"),
        ("negative_prompt", "negative_prompt"),
        ("image / image_id", "image"),
        ("strength", "strength"),
        ("loras (LoRA ids)", "loras"),
        ("loras (scales)", "lora_scales"),
        ("loras (a composition) / LoRA as model_id", "lora_model"),
    ]
    head = "| Node input | " + " | ".join(f"`{m.model_id}`" for m in models) + " |"
    sep = "|---|" + "---|" * len(models)
    lines = [head, sep]
    for label, role in rows:
        cells = []
        for m in models:
            d = m.role(role)
            if d is None:
                cells.append("not used" if role in ("modality",) else "-")
            else:
                extra = " (one-item array)" if d.type == "file_array" else ""
                cells.append(f"`{d.name}` {d.type}{extra}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
