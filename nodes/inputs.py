"""Widget definitions and tooltips shared by the nodes.

Ranges, combo lists and defaults come from ``scenario_api.spec`` so the widgets
can never drift from what the client validates. The *order* of the inputs
built here is a contract with every saved workflow (``widgets_values`` are
positional): it is locked by ``tests/node_contract.json``. New inputs may only
be appended as optional inputs.
"""

from __future__ import annotations

from typing import Any

from ..scenario_api import spec

DEFAULT_MODEL = "flux.1-dev"
DEFAULT_MODALITY = "canny"
SCHEDULER_DEFAULT = "default"
SCHEDULER_CHOICES = (SCHEDULER_DEFAULT,) + spec.SCHEDULERS
UNSET = -1.0  # control_start / control_end: "Scenario's default, not sent"
MAX_BUDGET = 1_000_000.0


def _span(field: str, family: str) -> str:
    lo, hi = spec.size_range(field, family)
    return f"{lo}-{hi}"


def _guidance_span(family: str) -> str:
    lo, hi = spec.FAMILY_RANGES.get(family, {}).get("guidance", (spec.RULES["guidance"].lo, spec.RULES["guidance"].hi))
    return f"{lo:g}-{hi:g}"


SIZE_NOTE = (
    "0 = derived from the control image (its aspect ratio, fitted to the model's size rules, "
    f"multiples of {spec.size_multiple(spec.FLUX)}). Otherwise {_span('width', spec.FLUX)} in steps of "
    f"{spec.size_multiple(spec.FLUX)} (SDXL {_span('width', spec.SDXL)}, SD 1.5 {_span('width', spec.SD15)})"
)

MIXED_SIZES_NOTE = (
    "Results of different sizes are padded, centred, to the largest width and height (black padding; never resized)."
)


def _rule(field: str) -> spec.NumberRule:
    return spec.RULES[field]


def prompt_input() -> tuple[str, dict[str, Any]]:
    return ("STRING", {"multiline": True, "default": "", "tooltip": "What to generate. Required, not empty."})


def common_required() -> dict[str, tuple[str, dict[str, Any]] | tuple[Any, ...]]:
    """Required widgets of both generate nodes, in widget order."""
    return {"prompt": prompt_input(), **_model_widgets(), **_sampling_widgets(), **_size_and_seed_widgets()}


def _model_widgets() -> dict[str, tuple[Any, ...]]:
    """Which model, and how the control image steers it."""
    return {
        "model_id": (
            "STRING",
            {
                "default": DEFAULT_MODEL,
                "tooltip": "Scenario model id: a Flux (e.g. flux.1-dev), SDXL or SD 1.5 model or a LoRA trained on "
                "one. The model's family decides which modalities, sizes and options are allowed.",
            },
        ),
        "modality": (
            list(spec.ALL_MODALITY_NAMES),
            {
                "default": DEFAULT_MODALITY,
                "tooltip": "What the control image is: canny edges, pose, depth... Flux: "
                + ", ".join(spec.FLUX_MODALITIES)
                + ". SDXL: "
                + ", ".join(spec.SDXL_MODALITIES + spec.PRESETS_BY_FAMILY[spec.SDXL])
                + ". SD 1.5: "
                + ", ".join(spec.SD15_MODALITIES + spec.PRESETS_BY_FAMILY[spec.SD15])
                + ". Ignored when 'modalities' is filled.",
            },
        ),
        "modality_strength": (
            "FLOAT",
            {
                "default": 1.0,
                "min": 0.01,
                "max": spec.WEIGHT_MAX,
                "step": 0.01,
                "tooltip": "How strongly the control image steers the result, sent as modality:strength "
                "(e.g. canny:0.8). Ignored when 'modalities' is filled.",
            },
        ),
    }


def _sampling_widgets() -> dict[str, tuple[Any, ...]]:
    """How many images, and how they are sampled."""
    steps = _rule("numInferenceSteps")
    samples = _rule("numSamples")
    return {
        "num_samples": (
            "INT",
            {
                "default": 1,
                "min": int(samples.lo),
                "max": int(samples.hi),
                "tooltip": "Images per control image (each one is billed). A batch of B control images runs B "
                "jobs, giving B x num_samples images.",
            },
        ),
        "guidance": (
            "FLOAT",
            {
                "default": spec.DEFAULT_GUIDANCE[spec.FLUX],
                "min": _rule("guidance").lo,
                "max": _rule("guidance").hi,
                "step": 0.1,
                "tooltip": f"Prompt adherence. Flux: {_guidance_span(spec.FLUX)} "
                f"({spec.DEFAULT_GUIDANCE[spec.FLUX]:g} typical); SDXL / SD 1.5: {_guidance_span(spec.SDXL)} "
                f"({spec.DEFAULT_GUIDANCE[spec.SDXL]:g}-{spec.DEFAULT_GUIDANCE[spec.SD15]:g} typical).",
            },
        ),
        "num_inference_steps": (
            "INT",
            {
                "default": spec.DEFAULTS["numInferenceSteps"],
                "min": int(steps.lo),
                "max": int(steps.hi),
                "tooltip": f"Denoising steps ({int(steps.lo)}-{int(steps.hi)}). More steps cost more creative units.",
            },
        ),
    }


def _size_and_seed_widgets() -> dict[str, tuple[Any, ...]]:
    """The output size (0 = derived from the control image) and the seed."""
    return {
        "width": (
            "INT",
            {"default": 0, "min": 0, "max": int(_rule("width").hi), "step": 8, "tooltip": "Output width. " + SIZE_NOTE},
        ),
        "height": (
            "INT",
            {
                "default": 0,
                "min": 0,
                "max": int(_rule("height").hi),
                "step": 8,
                "tooltip": "Output height. " + SIZE_NOTE,
            },
        ),
        "seed": (
            "INT",
            {
                "default": 0,
                "min": 0,
                "max": spec.SEED_MAX,
                "control_after_generate": True,
                "tooltip": "Seed sent to Scenario. Re-queueing with the same seed and inputs reuses ComfyUI's cached "
                "result (no new job, no new cost); a new seed runs a new job. Headless /prompt callers must vary "
                "it themselves.",
            },
        ),
    }


def strength_input() -> tuple[str, dict[str, Any]]:
    rule = _rule("strength")
    return (
        "FLOAT",
        {
            "default": spec.DEFAULT_STRENGTH,
            "min": rule.lo,
            "max": rule.hi,
            "step": 0.01,
            "tooltip": "How far the result departs from the init image: 0.01 keeps it almost unchanged, "
            "1.0 ignores it.",
        },
    )


def control_image_inputs() -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "control_image": (
            "IMAGE",
            {
                "tooltip": "The control map (edges, pose, depth...). Give this OR control_image_id. A batch of B "
                "images runs B Scenario jobs concurrently (results in batch order). Uploaded once per distinct "
                "image per ComfyUI session and sent as an asset id.",
            },
        ),
        "control_image_id": (
            "STRING",
            {
                "default": "",
                "tooltip": "A Scenario asset id (asset_...) of a control map already uploaded, e.g. from Scenario "
                "Upload Asset. Several ids separated by commas run one job each. Give this OR control_image.",
            },
        ),
    }


def init_image_inputs() -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "image": (
            "IMAGE",
            {
                "tooltip": "The init image to transform. Give this OR image_id. Batch size 1 (used for every job) or "
                "the same size as the control batch (paired by index).",
            },
        ),
        "image_id": (
            "STRING",
            {
                "default": "",
                "tooltip": "A Scenario asset id (asset_...) of the init image. Give this OR image. One id, or one "
                "per control image separated by commas.",
            },
        ),
    }


def common_optional_tail() -> dict[str, tuple[Any, ...]]:
    """Optional widgets after the image inputs, in widget order."""
    return {**_prompt_options(), **_control_window(), **_budget_and_custom_options()}


def _prompt_options() -> dict[str, tuple[Any, ...]]:
    """Negative prompt, sampler and the full modality string."""
    return {
        "negative_prompt": (
            "STRING",
            {
                "multiline": True,
                "default": "",
                "tooltip": "What to avoid. Empty = not sent. Ignored by Scenario when guidance < 1.",
            },
        ),
        "scheduler": (
            list(SCHEDULER_CHOICES),
            {
                "default": SCHEDULER_DEFAULT,
                "tooltip": "Sampler, Stable Diffusion models only. 'default' = Scenario's choice (not sent); any "
                "other value on a Flux model is rejected before anything is sent.",
            },
        ),
        "modalities": (
            "STRING",
            {
                "default": "",
                "tooltip": "Advanced: the full modality string, e.g. 'depth:0.5,pose:1.0' (SDXL / SD 1.5: up to 3, "
                "or one preset such as 'character'; Flux: exactly one). When filled it replaces modality and "
                "modality_strength.",
            },
        ),
    }


def _control_window() -> dict[str, tuple[Any, ...]]:
    """Flux: the fraction of the steps the control acts on."""
    return {
        "control_start": (
            "FLOAT",
            {
                "default": UNSET,
                "min": UNSET,
                "max": 1.0,
                "step": 0.01,
                "tooltip": "Flux only: fraction of the steps where the control starts (0 = first step). "
                "-1 = Scenario's default (not sent).",
            },
        ),
        "control_end": (
            "FLOAT",
            {
                "default": UNSET,
                "min": UNSET,
                "max": 1.0,
                "step": 0.01,
                "tooltip": "Flux only: fraction of the steps where the control stops; must be above control_start. "
                "-1 = Scenario's default (not sent).",
            },
        ),
    }


def _budget_and_custom_options() -> dict[str, tuple[Any, ...]]:
    """The run's budget, and custom models' LoRAs and extra inputs."""
    return {
        "max_creative_units": (
            "FLOAT",
            {
                "default": 0.0,
                "min": 0.0,
                "max": MAX_BUDGET,
                "step": 0.1,
                "tooltip": "Budget in Scenario creative units for this node run (all jobs together). When above 0, "
                "a free price quote is asked first and nothing is submitted if it costs more. 0 = no budget.",
            },
        ),
        "loras": (
            "STRING",
            {
                "default": "",
                "tooltip": "Custom models (e.g. model_bfl-flux-1-dev, model_z-image): LoRAs as model_id[:scale], "
                "comma separated, e.g. 'model_abc:0.8, model_def' (scale 1 when omitted; at most what the model "
                "allows, 6 on both ControlNet bases). A composition id here goes to the model's single-model "
                "input. Leave empty on legacy models: there a LoRA is simply the model_id.",
            },
        ),
        "extra_inputs": (
            "STRING",
            {
                "default": "",
                "multiline": True,
                "tooltip": 'Custom models: more of the model\'s own inputs as a JSON object, e.g. {"controlEnd": '
                "0.65}. Checked against the inputs the model declares (an unknown name is refused with the list "
                "of its inputs); a value here wins over the node's. Empty = none.",
            },
        ),
    }


INIT_FORMAT_WIDGET = "init_image_format"
INIT_FORMAT_DEFAULT = "png (lossless)"
#: ``init_image_format`` choice -> (``imaging.encode_image`` format, quality). Each label states its quality. The
#: labels are saved in workflows: append new ones, never rename one.
INIT_IMAGE_FORMATS: dict[str, tuple[str, int | None]] = {
    INIT_FORMAT_DEFAULT: ("png", None),
    "jpeg q90": ("jpeg", 90),
    "jpeg q75": ("jpeg", 75),
    "webp q90": ("webp", 90),
    "webp q75": ("webp", 75),
}


def init_format_input() -> dict[str, tuple[Any, ...]]:
    """Img2img only, after every other optional input: how init pixels are encoded for upload."""
    return {
        INIT_FORMAT_WIDGET: (
            list(INIT_IMAGE_FORMATS),
            {
                "default": INIT_FORMAT_DEFAULT,
                "tooltip": "How the init image is encoded for upload, when it is given as pixels ('image'); an "
                "image_id is used as it is. 'png (lossless)' sends the exact pixels. JPEG or WebP at the stated "
                "quality is opt-in: a photo becomes several times smaller, so it encodes and uploads faster, but "
                "it is lossy (fine detail and colours shift slightly). The control map is always sent as lossless "
                "PNG. The node reports the encoded size and time.",
            },
        ),
    }


HIDDEN = {"unique_id": "UNIQUE_ID"}
