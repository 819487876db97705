"""The emulator's fixed model catalog, shaped like the model records recorded from Scenario in 2026.

* Legacy bases of each rule family (``flux.1-dev``, ``flux.1-schnell``, SDXL, SD 1.5).
* The two 2026 ControlNet bases of the custom path, with their full declared
  ``inputs`` and ``uiConfig`` as recorded live (2026-10):
  ``model_bfl-flux-1-dev`` (``controlImage`` a file, ``controlModality``,
  ``controlStrength``) and ``model_z-image`` (``controlImage`` a file_array,
  ``controlnetConditioningScale``, no modality).
* A made-up third ControlNet model with other input names
  (``model_emu-sketchnet``), so that mapping by meaning is exercised on a
  model no code knows by id.
* A custom model without ControlNet, Flux LoRAs (``flux.1-lora``), a
  composition (``flux.1-composition``), a Flux.2 LoRA, Z-Image LoRAs
  (``zimage-lora``), and the account's own private models.

``GET /models`` rows never carry ``inputs`` or ``uiConfig`` (as recorded);
``GET /models/{id}`` does. Rows are listed in a stable order and paginated
(``privacy`` private by default, like Scenario; ``type``, ``pageSize``,
``paginationToken``).
"""

from __future__ import annotations

import copy
from typing import Any

_BASE_CAPS = ["txt2img", "img2img", "controlnet", "controlnet_img2img"]
_LORA_CAPS = ["txt2img", "img2img", "controlnet", "controlnet_img2img", "controlnet_inpaint", "inpaint"]
_FLUX_LORA_TYPES = ["flux.1-lora", "flux.1-composition"]
_ZIMAGE_LORA_TYPES = ["zimage-lora", "zimage-turbo-lora", "zimage-de-turbo-lora"]


def _input(name: str, type_: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "costImpact": False, **more}


def _presets(auto: bool) -> list[dict[str, Any]]:
    sizes = [
        ("16:9", 1344, 768),
        ("3:2", 1216, 832),
        ("4:3", 1104, 832),
        ("5:4", 1088, 896),
        ("1:1", 1024, 1024),
        ("4:5", 896, 1088),
        ("3:4", 832, 1104),
        ("2:3", 832, 1216),
        ("9:16", 768, 1344),
    ]
    out: list[dict[str, Any]] = [{"label": "Auto (match input)"}] if auto else []
    out += [{"label": f"{r} ({w}x{h})", "width": w, "height": h} for r, w, h in sizes]
    return out


def _lora_inputs(single_types: list[str], list_types: list[str], list_label: str) -> list[dict[str, Any]]:
    return [
        _input(
            "modelId",
            "model",
            modelTypes=single_types,
            default="",
            label="LoRA or Composition Model",
            description="One LoRA (added to the LoRA list) or a composition (its concepts fill the list).",
        ),
        _input(
            "loras",
            "model_array",
            modelTypes=list_types,
            default=[],
            maxLength=6,
            label=list_label,
            description="LoRA model ids; overrides a composition's own list.",
        ),
        _input("lorasScale", "number_array", min=0, max=2, step=0.05, label="LoRA Scale", description="One per LoRA."),
    ]


_PROMPT = _input(
    "prompt", "string", maxLength=2048, prompt=True, promptSpark=True, required={"always": True}, label="Prompt"
)
_SEED = _input("seed", "number", min=0, max=2147483647, group="Settings", label="Seed")

# model_bfl-flux-1-dev, as recorded (names, types, ranges, defaults, required rules, costImpact).
_BFL_FLUX_DEV_INPUTS: list[dict[str, Any]] = [
    *_lora_inputs(_FLUX_LORA_TYPES, ["flux.1-lora"], "Flux LoRA"),
    _PROMPT,
    _input("image", "file", kind="image", group="Reference Image", parent=True, label="Reference Image"),
    _input("strength", "number", default=0.8, min=0.01, max=1, step=0.01, group="Reference Image", label="Strength"),
    _input(
        "controlImage",
        "file",
        kind="image",
        group="ControlNet",
        parent=True,
        label="Control Image",
        description="The control map (edges, depth, pose...), read as the chosen modality says.",
    ),
    _input(
        "controlModality",
        "string",
        allowedValues=["canny", "tile", "depth", "blur", "pose", "gray", "low-quality"],
        default="canny",
        group="ControlNet",
        label="Control Modality",
    ),
    _input("controlStrength", "number", default=0.7, min=0, max=1, step=0.01, group="ControlNet", label="Strength"),
    _input("controlStart", "number", default=0, min=0, max=1, step=0.01, group="ControlNet", label="Control Start"),
    _input("controlEnd", "number", default=1, min=0, max=1, step=0.01, group="ControlNet", label="Control End"),
    _input("numOutputs", "number", default=1, min=1, max=4, step=1, costImpact=True, group="Settings", label="Images"),
    _input(
        "numInferenceSteps",
        "number",
        default=28,
        min=1,
        max=50,
        step=1,
        costImpact=True,
        group="Settings",
        label="Steps",
    ),
    _input("width", "number", default=1104, min=128, max=2048, step=16, group="Settings", label="Width"),
    _input("height", "number", default=832, min=128, max=2048, step=16, group="Settings", label="Height"),
    _input("guidance", "number", default=3.5, min=0, max=10, step=0.1, group="Settings", label="Guidance"),
    _SEED,
]

# model_z-image, as recorded: a file_array control, no modality, its own control-scale name.
_Z_IMAGE_INPUTS: list[dict[str, Any]] = [
    *_lora_inputs(_ZIMAGE_LORA_TYPES, _ZIMAGE_LORA_TYPES, "Z-Image LoRA"),
    _PROMPT,
    _input("negativePrompt", "string", maxLength=2048, prompt=True, label="Negative Prompt"),
    _input("image", "file", kind="image", group="Reference Image", parent=True, label="Reference Image"),
    _input(
        "strength",
        "number",
        default=0.6,
        min=0,
        max=1,
        step=0.01,
        group="Reference Image",
        required={"when": {"inferenceType": ["img2img"]}},
        label="Strength",
    ),
    _input(
        "controlImage",
        "file_array",
        kind="image",
        group="ControlNet",
        parent=True,
        label="Control images",
        description="Control images (edge, depth, or pose).",
    ),
    _input(
        "controlnetConditioningScale",
        "number",
        default=0.75,
        min=0,
        max=1,
        step=0.01,
        group="ControlNet",
        required={"when": {"inferenceType": ["controlnet"]}},
        label="Control Scale",
    ),
    _input("numOutputs", "number", default=4, min=1, max=4, step=1, costImpact=True, group="Settings", label="Images"),
    _input(
        "numInferenceSteps",
        "number",
        default=28,
        min=1,
        max=100,
        step=1,
        costImpact=True,
        group="Settings",
        label="Steps",
    ),
    _input("width", "number", min=128, max=2048, step=16, group="Settings", label="Width"),
    _input("height", "number", min=128, max=2048, step=16, group="Settings", label="Height"),
    _input("guidance", "number", default=5, min=1, max=10, step=0.1, group="Settings", label="Guidance"),
    _SEED,
]

# A made-up ControlNet model: no code knows its input names; they are found by meaning.
_SKETCHNET_INPUTS: list[dict[str, Any]] = [
    _input("text", "string", maxLength=1000, prompt=True, required={"always": True}, label="Prompt"),
    _input("avoid_negative", "string", maxLength=500, label="Avoid"),
    _input("conditioningImages", "file_array", kind="image", group="Guides", maxLength=1, label="Guide image"),
    _input("controlType", "string", allowedValues=["edge", "depth", "scribble"], default="edge", group="Guides"),
    _input(
        "controlWeight",
        "number",
        default=1,
        min=0,
        max=2,
        step=0.05,
        required={"ifDefined": {"conditioningImages": "Set a weight for the guide image"}},
        group="Guides",
    ),
    _input("initImage", "file", kind="image", label="Start image"),
    _input("imageStrength", "number", default=0.5, min=0, max=1, required={"ifDefined": {"initImage": ""}}),
    _input("numImages", "number", default=1, min=1, max=8, step=1, costImpact=True),
    _input("steps", "number", default=20, min=1, max=60, step=1, costImpact=True),
    _input("cfg_scale", "number", default=7, min=0, max=20, step=0.5),
    _input("outputWidth", "number", default=768, min=256, max=1536, step=64),
    _input("outputHeight", "number", default=768, min=256, max=1536, step=64),
    _input("tiling", "boolean", default=False),
    _input("seed", "number", min=0, max=4294967295),
]

_BFL_UI = {
    "lorasComponent": {"label": "Model", "modelIdInput": "modelId", "modelInput": "loras", "scaleInput": "lorasScale"},
    "resolutionComponent": {
        "label": "Dimensions",
        "widthInput": "width",
        "heightInput": "height",
        "presets": _presets(False),
    },
    "selects": {
        "controlModality": {
            "canny": "Canny",
            "tile": "Tile",
            "depth": "Depth",
            "blur": "Blur",
            "pose": "Pose",
            "gray": "Gray",
            "low-quality": "Low Quality",
        }
    },
}
_Z_UI = {
    "lorasComponent": {"label": "Model", "modelIdInput": "modelId", "modelInput": "loras", "scaleInput": "lorasScale"},
    "resolutionComponent": {
        "label": "Dimensions",
        "widthInput": "width",
        "heightInput": "height",
        "presets": _presets(True),
    },
}
_SKETCH_UI = {
    "resolutionComponent": {
        "label": "Size",
        "widthInput": "outputWidth",
        "heightInput": "outputHeight",
        "presets": [{"label": "Square (768x768)", "width": 768, "height": 768}],
    }
}


def _lora(mid: str, name: str, type_: str, privacy: str, **more: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": mid,
        "name": name,
        "type": type_,
        "custom": False,
        "privacy": privacy,
        "capabilities": _LORA_CAPS,
    }
    if type_.startswith("flux.1"):
        record["compliantModelIds"] = ["flux.1-dev", "flux.1-schnell"]
    record.update(more)
    if "concepts" not in record:
        record["concepts"] = [{"modelId": mid, "scale": 0.8}]
    return record


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
        "name": "FLUX.1 Dev",
        "type": "custom",
        "custom": True,
        "capabilities": ["txt2img", "img2img", "controlnet", "outpaint"],
        "tags": ["Black Forest Labs", "Flux", "sc:third-party"],
        "inputs": _BFL_FLUX_DEV_INPUTS,
        "uiConfig": _BFL_UI,
    },
    {
        "id": "model_z-image",
        "name": "Z-Image",
        "type": "custom",
        "custom": True,
        "capabilities": ["txt2img", "img2img", "controlnet"],
        "tags": ["Academia", "sc:featured", "sc:third-party"],
        "inputs": _Z_IMAGE_INPUTS,
        "uiConfig": _Z_UI,
    },
    {
        "id": "model_emu-sketchnet",
        "name": "SketchNet (emulator-only model with its own input names)",
        "type": "custom",
        "custom": True,
        "capabilities": ["txt2img", "img2img", "controlnet"],
        "inputs": _SKETCHNET_INPUTS,
        "uiConfig": _SKETCH_UI,
    },
    {
        "id": "model_demo-custom-txt2img",
        "name": "Demo custom model without ControlNet",
        "type": "custom",
        "custom": True,
        "capabilities": ["txt2img"],
        "inputs": [
            _PROMPT,
            _input("numOutputs", "number", default=1, min=1, max=4, step=1, costImpact=True),
            _input("width", "number", default=1024, min=256, max=2048, step=16),
            _input("height", "number", default=1024, min=256, max=2048, step=16),
            _SEED,
        ],
    },
    _lora("model_demo-flux-lora", "Demo Flux LoRA", "flux.1-lora", "public", compliantModelIds=["flux.1-dev"]),
    _lora("model_emu-flux-lora-ink", "Ink Wash (Flux LoRA)", "flux.1-lora", "public"),
    # a real public Flux LoRA id from Scenario's catalog (as recorded), so the LoRA example runs unchanged here too
    _lora("model_2taP2G9BJL1Rw8t81NwiXGZA", "Public Flux LoRA (recorded id)", "flux.1-lora", "public"),
    _lora("model_emu-flux-lora-clay", "Clay Figures (Flux LoRA)", "flux.1-lora", "public"),
    _lora(
        "model_emu-flux-composition",
        "Ink and Clay (composition)",
        "flux.1-composition",
        "public",
        concepts=[
            {"modelId": "model_emu-flux-lora-ink", "scale": 0.45},
            {"modelId": "model_emu-flux-lora-clay", "scale": 0.65},
        ],
    ),
    _lora("model_emu-flux2-lora", "Poster (Flux.2 LoRA)", "flux.2-dev-lora", "public"),
    _lora("model_emu-zimage-lora-neon", "Neon (Z-Image LoRA)", "zimage-lora", "public"),
    # the account's own trained models (GET /models lists these by default)
    _lora("model_my-flux-style", "My house style (Flux LoRA)", "flux.1-lora", "private"),
    _lora(
        "model_my-composition",
        "My style + ink (composition)",
        "flux.1-composition",
        "private",
        concepts=[
            {"modelId": "model_my-flux-style", "scale": 0.7},
            {"modelId": "model_emu-flux-lora-ink", "scale": 0.3},
        ],
    ),
    _lora("model_my-zimage-style", "My Z-Image style (Z-Image LoRA)", "zimage-lora", "private"),
    {
        "id": "model_my-txt2img-only",
        "name": "My custom model without ControlNet",
        "type": "custom",
        "custom": True,
        "privacy": "private",
        "capabilities": ["txt2img"],
        "inputs": [_PROMPT, _SEED],
    },
)

_BY_ID = {m["id"]: m for m in _CATALOG}
LIST_ONLY_KEYS = ("inputs", "uiConfig")
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 500


def _full(model: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(model)
    out.setdefault("privacy", "public")
    out.setdefault("tags", [])
    out["status"] = "trained"
    return out


def get_model(model_id: str) -> dict[str, Any] | None:
    """The ``GET /models/{id}`` record (with ``inputs`` / ``uiConfig`` when it has them), or None."""
    model = _BY_ID.get(model_id)
    return _full(model) if model else None


def model_type(model_id: str) -> str | None:
    """The ``type`` of a catalog model, None when there is no such model."""
    model = _BY_ID.get(model_id)
    return str(model["type"]) if model else None


def list_models(privacy: str | None = None, type_: str | None = None) -> list[dict[str, Any]]:
    """Rows for ``GET /models``: no ``inputs`` or ``uiConfig`` (as recorded).

    ``privacy`` None lists every row (the emulator's own tools); the route passes
    ``private`` by default like Scenario.
    """
    rows = [_full(m) for m in _CATALOG]
    for row in rows:
        for key in LIST_ONLY_KEYS:
            row.pop(key, None)
    if privacy is not None:
        rows = [r for r in rows if r["privacy"] == privacy]
    if type_:
        rows = [r for r in rows if r["type"] == type_]
    return rows
