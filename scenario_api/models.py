"""Typed views of Scenario's requests and responses.

Responses are parsed tolerantly (unknown keys kept in ``raw``; missing keys
become ``None``), because the real API's shapes are only partly documented.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from . import declared_inputs, spec
from .errors import ScenarioError


class JobStatus(StrEnum):
    """A Scenario job status. A ``str``: members compare equal to the wire text (``"success"``)."""

    PENDING = "pending"
    QUEUED = "queued"
    WARMING_UP = "warming-up"
    IN_PROGRESS = "in-progress"
    FINALIZING = "finalizing"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELED = "canceled"

    @classmethod
    def parse(cls, value: Any) -> JobStatus | str:
        """The member for a wire status; an unknown text stays a plain ``str`` (reported, never guessed)."""
        text = value[:64] if isinstance(value, str) and value else "unknown"
        try:
            return cls(text)
        except ValueError:
            return text

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def queued(self) -> bool:
        """Waiting for a slot: time spent here is Scenario's capacity, not the job's run time."""
        return self in QUEUED_STATUSES


TERMINAL_STATUSES = (JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.CANCELED)
ACTIVE_STATUSES = (
    JobStatus.PENDING,
    JobStatus.QUEUED,
    JobStatus.WARMING_UP,
    JobStatus.IN_PROGRESS,
    JobStatus.FINALIZING,
)
QUEUED_STATUSES = (JobStatus.PENDING, JobStatus.QUEUED)
STATUS_LABELS: dict[str, str] = {
    JobStatus.PENDING: "waiting",
    JobStatus.QUEUED: "queued",
    JobStatus.WARMING_UP: "starting",
    JobStatus.IN_PROGRESS: "generating",
    JobStatus.FINALIZING: "finishing",
    JobStatus.SUCCESS: "done",
    JobStatus.FAILURE: "failed",
    JobStatus.CANCELED: "canceled",
}


def _float(v: Any) -> float | None:
    """A finite number from a JSON value (numbers or numeric strings), else None."""
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    if isinstance(v, str) and len(v) > 64:
        return None
    try:
        value = float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


MAX_ASSET_IDS = 1000  # far more outputs than any job has; a longer list is not a real job record
_ASSET_ID_SHAPE = re.compile(r"asset_[A-Za-z0-9_-]{1,128}")


def _text(v: Any, limit: int = 2000) -> str | None:
    """A bounded string from a JSON value (None for anything that is not text or a number)."""
    if isinstance(v, str):
        return v if len(v) <= limit else v[: limit - 3] + "..."
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    return None


def _asset_id_list(value: Any, job_id: str) -> tuple[str, ...]:
    """A job's ``assetIds``: a list of asset ids, or a ScenarioError naming the job."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or len(value) > MAX_ASSET_IDS:
        raise ScenarioError(
            f"Scenario sent job {job_id or '(no id)'} with an unusable assetIds value (a "
            f"{type(value).__name__}{f' of {len(value)} items' if isinstance(value, (list, tuple)) else ''}); "
            "collect its results later with Poll Job",
            job_id=job_id or None,
        )
    ids: list[str] = []
    for item in value:
        if item is None or item == "":
            continue
        if not isinstance(item, str) or not _ASSET_ID_SHAPE.fullmatch(item):
            raise ScenarioError(
                f"Scenario sent job {job_id or '(no id)'} with something that is not an asset id in assetIds; "
                "collect its results later with Poll Job",
                job_id=job_id or None,
            )
        ids.append(item)
    return tuple(ids)


# --------------------------------------------------------------------------- request


@dataclass(frozen=True)
class ControlNetRequest:
    """A ControlNet generation, txt2img or (with ``image``) img2img.

    Exactly one of ``control_image`` (a data URL) and ``control_image_id`` (an
    asset id) is required. ``image`` (data URL or asset id) makes it img2img.
    ``None`` fields take the documented defaults at build time
    (:meth:`to_body`), so every value is sent explicitly.
    """

    prompt: str
    model_id: str = "flux.1-dev"
    modality: str = "canny"
    control_image: str | None = None
    control_image_id: str | None = None
    image: str | None = None
    strength: float | None = None
    num_samples: int | None = None
    guidance: float | None = None
    num_inference_steps: int | None = None
    width: int | None = None
    height: int | None = None
    scheduler: str | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    negative_prompt_strength: float | None = None
    control_start: float | None = None
    control_end: float | None = None
    disable_modality_detection: bool | None = None
    # Custom models only (``/generate/custom/{id}``): LoRAs as "id[:scale], ..." text or (id, scale)
    # pairs, and inputs the pack does not know by name (checked against the model's declared inputs).
    loras: str | tuple[tuple[str, float | None], ...] | None = None
    extra_inputs: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def endpoint(self) -> str:
        return spec.IMG2IMG if self.image is not None else spec.TXT2IMG

    def with_seed(self) -> ControlNetRequest:
        """A copy with a concrete seed, drawn here if none was given.

        Sending our own seed makes the request recognisable in the job list
        when a submit reply is lost.
        """
        if self.seed is not None:
            return self
        return replace(self, seed=secrets.randbelow(spec.SEED_MAX + 1))

    def to_body(self, family: str) -> dict[str, Any]:
        """The wire body with defaults filled in for ``family``; not yet validated."""
        body: dict[str, Any] = {
            "prompt": self.prompt,
            "modelId": self.model_id,
            "modality": self.modality,
            "numSamples": self.num_samples if self.num_samples is not None else spec.DEFAULTS["numSamples"],
            "guidance": self.guidance if self.guidance is not None else spec.DEFAULT_GUIDANCE.get(family),
            "numInferenceSteps": (
                self.num_inference_steps if self.num_inference_steps is not None else spec.DEFAULTS["numInferenceSteps"]
            ),
            "width": self.width if self.width is not None else spec.DEFAULTS["width"],
            "height": self.height if self.height is not None else spec.DEFAULTS["height"],
        }
        optional = {
            "controlImage": self.control_image,
            "controlImageId": self.control_image_id,
            "image": self.image,
            "scheduler": spec.canonical_scheduler(self.scheduler) or self.scheduler if self.scheduler else None,
            "seed": self.seed,
            "negativePrompt": self.negative_prompt or None,
            "negativePromptStrength": self.negative_prompt_strength,
            "controlStart": self.control_start,
            "controlEnd": self.control_end,
            "disableModalityDetection": self.disable_modality_detection,
        }
        if self.image is not None:
            optional["strength"] = self.strength if self.strength is not None else spec.DEFAULT_STRENGTH
        elif self.strength is not None:
            optional["strength"] = self.strength
        if family in (spec.SDXL, spec.SD15) and self.disable_modality_detection is None:
            # Explicit on SD: the documented default (true, the image already is the map) is
            # contradicted by Scenario's own examples, which send raw photos.
            optional["disableModalityDetection"] = True
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

    def summary(self) -> dict[str, Any]:
        """A loggable view: no image data, only sizes."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if v is None:
                continue
            out[k] = f"<data URL, {len(v)} chars>" if isinstance(v, str) and v.startswith("data:") else v
        return out


# --------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class Job:
    job_id: str
    status: JobStatus | str  # a JobStatus for every documented status; the raw text for an unknown one
    progress: float | None = None
    job_type: str | None = None
    asset_ids: tuple[str, ...] = ()
    error: str | None = None
    hint: str | None = None
    input: Mapping[str, Any] = field(default_factory=dict)
    cost: float | None = None
    created_at: str | None = None
    updated_at: str | None = None
    status_history: tuple[Mapping[str, Any], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Job:
        """Parse ``{"job": {...}}`` or the bare job object."""
        j = data.get("job", data) if isinstance(data, Mapping) else {}
        if not isinstance(j, Mapping):
            j = {}
        meta = j.get("metadata") if isinstance(j.get("metadata"), Mapping) else {}
        billing = j.get("billing") if isinstance(j.get("billing"), Mapping) else {}
        raw_id = j.get("jobId") or j.get("id") or ""
        job_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 200 else ""
        error = meta.get("error") or j.get("error")
        if isinstance(error, Mapping):
            error = error.get("message") or error.get("reason") or "an error record"
        error = _text(error)
        cost = _float(billing.get("cuCost"))
        if cost is None and isinstance(data, Mapping):
            cost = _float(data.get("creativeUnitsCost"))
        history = j.get("statusHistory") if isinstance(j.get("statusHistory"), list) else []
        job_input = meta.get("input")
        return cls(
            job_id=job_id,
            status=JobStatus.parse(j.get("status")),
            progress=_float(j.get("progress")),
            job_type=_text(j.get("jobType"), 100),
            asset_ids=_asset_id_list(meta.get("assetIds"), job_id),
            error=error or None,
            hint=_text(meta.get("hint") or j.get("hint")) or None,
            input=job_input if isinstance(job_input, Mapping) else {},
            cost=cost,
            created_at=_text(j.get("createdAt"), 64),
            updated_at=_text(j.get("updatedAt"), 64),
            status_history=tuple(h for h in history if isinstance(h, Mapping)),
            raw=dict(j),
        )


@dataclass(frozen=True)
class Asset:
    asset_id: str
    url: str | None = None
    mime_type: str | None = None
    kind: str | None = None
    status: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:  # the signed URL is a bearer token of sorts: keep it out of reprs
        return f"Asset(asset_id={self.asset_id!r}, mime_type={self.mime_type!r}, status={self.status!r})"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Asset:
        a = data.get("asset", data) if isinstance(data, Mapping) else {}
        if not isinstance(a, Mapping):
            a = {}
        meta = a.get("metadata") if isinstance(a.get("metadata"), Mapping) else {}
        return cls(
            asset_id=_text(a.get("id") or a.get("assetId") or "", 200) or "",
            url=a.get("url") if isinstance(a.get("url"), str) and len(a["url"]) <= 16384 else None,
            mime_type=_text(a.get("mimeType"), 100),
            kind=_text(a.get("kind"), 100),
            status=_text(a.get("status"), 100),
            metadata=dict(meta),
            raw=dict(a),
        )


@dataclass(frozen=True)
class Model:
    model_id: str
    type: str | None
    family: str
    name: str | None = None
    custom: bool = False
    capabilities: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def declared(self) -> declared_inputs.DeclaredModel:
        """The model's declared inputs and ``uiConfig`` (custom models; empty for others)."""
        cached = self.__dict__.get("_declared")
        if cached is None:
            cached = declared_inputs.DeclaredModel.from_record(self.raw)
            object.__setattr__(self, "_declared", cached)
        return cached

    @property
    def is_lora(self) -> bool:
        """A LoRA or a composition (its ``type`` says so), rather than a base model."""
        t = (self.type or "").lower()
        return t.endswith("-lora") or t.endswith("-composition")

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Model:
        m = data.get("model", data) if isinstance(data, Mapping) else {}
        if not isinstance(m, Mapping):
            m = {}
        mid = str(m.get("id") or m.get("modelId") or "")
        custom = bool(m.get("custom"))
        caps = m.get("capabilities") if isinstance(m.get("capabilities"), list) else []
        return cls(
            model_id=mid,
            type=m.get("type"),
            family=spec.family_of(m.get("type"), mid, custom),
            name=m.get("name"),
            custom=custom,
            capabilities=tuple(str(c) for c in caps),
            raw=dict(m),
        )


@dataclass(frozen=True)
class Quote:
    """A dry-run price (HTTP 269)."""

    creative_units: float
    discount: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Quote:
        """Parse a dry-run answer; a missing or unusable cost is an error, never 0 CU.

        A quote exists to be compared with a budget: treating "no price" as
        free would let any budget check pass, so the cost must be a finite,
        non-negative JSON number.
        """
        cost = data.get("creativeUnitsCost") if isinstance(data, Mapping) else None
        if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost) or cost < 0:
            raise ScenarioError(
                f"Scenario answered with a price quote without a cost (creativeUnitsCost={cost!r}); "
                "nothing was generated"
            )
        return cls(
            creative_units=float(cost),
            discount=_float(data.get("creativeUnitsDiscount")) or 0.0,
            details=dict(details) if isinstance(details := data.get("costDetails"), Mapping) else {},
        )


@dataclass(frozen=True)
class Submission:
    """The answer to a paid submit. ``adopted`` = found in the job list after a lost reply;
    ``reused`` = an earlier job's results served again (nothing was submitted or charged)."""

    job: Job
    creative_units: float | None = None
    adopted: bool = False
    request: ControlNetRequest | None = field(default=None, repr=False)
    reused: bool = False

    @property
    def job_id(self) -> str:
        return self.job.job_id
