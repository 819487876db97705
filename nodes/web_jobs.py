"""What the "Scenario Jobs" sidebar tab asks the server: recent jobs, a cancel, thumbnails.

The answers behind the jobs routes of :mod:`nodes.routes`:

* :func:`recent_jobs` (``GET /scenario/jobs?limit=N``): the newest paid jobs
  from the pack's job ledger (``nodes.job_ledger``: every paid request the
  nodes made on this machine, with its state, cost and asset ids). Without a
  ledger (not installed yet, or it cannot be opened) the account's recent jobs
  come from Scenario (``GET /jobs``) instead; ``source`` says which.
* :func:`cancel` (``POST /scenario/jobs/{job_id}/cancel``): one cancel request,
  as the user asked for it; the answer says what Scenario replied.
* :func:`thumbnail` (``GET /scenario/assets/{asset_id}/thumbnail``): a small
  JPEG of an asset, downloaded through the client (credential-free, from
  Scenario's CDN only) and kept in a small per-process cache, so signed URLs
  never reach the browser.

Row shape (the contract with ``web/scenario_jobs.js``)::

    {"job_id", "state", "status", "created_at" (ISO 8601 UTC), "cost" (CU or null), "model_id",
     "prompt", "asset_ids": [...], "thumbnails": [{"asset_id", "url"}], "error", "cancelable"}
"""

from __future__ import annotations

import asyncio
import importlib
import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..scenario_api import ScenarioClient, ValidationError, spec
from .web_api import SettingsFactory, _with_client

log = logging.getLogger("scenario_controlnet")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
THUMBS_PER_JOB = 4
THUMB_SIDE = 160
THUMB_CACHE_MAX = 128
PENDING = ("submitting", "accepted", "uncertain")  # the ledger's states of a job that may still run
RUNNING_STATUSES = ("pending", "queued", "warming-up", "in-progress", "finalizing")
SUBMIT_KIND = "submit"

LedgerFactory = Callable[[], Any]


def default_ledger() -> Any:
    """The nodes' job ledger, or None (no ledger module yet, no user directory, or it cannot be opened)."""
    try:  # the job ledger's ComfyUI side (nodes/job_ledger.py); absent from packs without it
        job_ledger = importlib.import_module(".job_ledger", __package__)
    except ImportError:
        return None
    try:
        return job_ledger.node_ledger()
    except Exception as exc:  # the panel must never break because the ledger did
        log.warning("Scenario: the job ledger could not be read for the jobs panel (%s)", type(exc).__name__)
        return None


def check_limit(value: Any) -> int:
    allowed = f"an integer from 1 to {MAX_LIMIT}"
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        n = int(str(value))
    except ValueError:
        raise ValidationError("limit", value, allowed, param="limit") from None
    if not 1 <= n <= MAX_LIMIT:
        raise ValidationError("limit", value, allowed, param="limit")
    return n


def _iso(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(float(seconds), tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _thumbs(asset_ids: Any) -> list[dict[str, str]]:
    return [
        {"asset_id": a, "url": f"/scenario/assets/{a}/thumbnail"}
        for a in list(asset_ids)[:THUMBS_PER_JOB]
        if isinstance(a, str) and a
    ]


def row_from_record(record: Any) -> dict[str, Any]:
    """A ledger record (``scenario_api.ledger.Record``) as a panel row."""
    request = record.request if isinstance(getattr(record, "request", None), Mapping) else {}
    state = str(record.state)
    assets = list(getattr(record, "asset_ids", ()) or ())
    return {
        "job_id": record.job_id,
        "state": state,
        "status": "",
        "created_at": _iso(getattr(record, "created_at", None)),
        "cost": record.cost,
        "model_id": str(request.get("modelId") or ""),
        "prompt": str(getattr(record, "prompt", "") or ""),
        "asset_ids": assets,
        "thumbnails": _thumbs(assets),
        "error": str(record.note or "") if state in ("failed", "refused", "canceled", "uncertain") else "",
        "cancelable": state in PENDING and bool(record.job_id),
    }


def row_from_job(job: Any) -> dict[str, Any]:
    """A Scenario job (``scenario_api.Job``) as a panel row."""
    status = str(getattr(job.status, "value", job.status))
    assets = list(job.asset_ids)
    return {
        "job_id": job.job_id,
        "state": status,
        "status": status,
        "created_at": job.created_at or "",
        "cost": job.cost,
        "model_id": str(job.input.get("modelId") or ""),
        "prompt": str(job.input.get("prompt") or "")[:80],
        "asset_ids": assets,
        "thumbnails": _thumbs(assets),
        "error": job.error or "",
        "cancelable": status in RUNNING_STATUSES,
    }


async def recent_jobs(
    limit: Any = None,
    *,
    ledger_factory: LedgerFactory | None = None,
    settings_factory: SettingsFactory | None = None,
) -> dict[str, Any]:
    """``GET /scenario/jobs``: ``{"jobs": [rows], "source": "ledger" | "scenario"}``, newest first."""
    n = check_limit(limit)
    ledger = (ledger_factory or default_ledger)()
    if ledger is not None:
        records = await asyncio.to_thread(ledger.recent, limit=n, kind=SUBMIT_KIND)
        rows = [row_from_record(r) for r in records if getattr(r, "job_id", None)]
        return {"jobs": rows, "source": "ledger"}

    async def ask(client: ScenarioClient) -> Any:
        return await client.list_jobs(page_size=min(n, 50), max_pages=max(1, -(-n // 50)))

    jobs = await _with_client(settings_factory, ask)
    return {"jobs": [row_from_job(j) for j in list(jobs)[:n]], "source": "scenario"}


async def cancel(job_id: Any, *, settings_factory: SettingsFactory | None = None) -> dict[str, Any]:
    """``POST /scenario/jobs/{job_id}/cancel``: one cancel request; ``cancel_sent`` false when Scenario refused."""
    jid = spec.check_id("jobId", job_id, "job_id")

    async def ask(client: ScenarioClient) -> Any:
        return await client.cancel_job(jid, best_effort=False)

    job = await _with_client(settings_factory, ask)
    log.info("Scenario: cancel of job %s requested from the jobs panel", jid)
    if job is None:
        return {"job_id": jid, "status": "", "cancel_sent": False, "note": "Scenario says this job cannot be canceled"}
    return {"job_id": jid, "status": str(getattr(job.status, "value", job.status)), "cancel_sent": True}


class _ThumbCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> bytes | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: tuple[str, str], data: bytes) -> None:
        with self._lock:
            self._items[key] = data
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


THUMBS = _ThumbCache(THUMB_CACHE_MAX)


def _shrink(data: bytes) -> bytes:
    from PIL import Image  # ComfyUI ships Pillow

    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (THUMB_SIDE * 2, THUMB_SIDE * 2))
        small = im.convert("RGB")
        small.thumbnail((THUMB_SIDE, THUMB_SIDE))
        buf = io.BytesIO()
        small.save(buf, format="JPEG", quality=80)
        return buf.getvalue()


async def thumbnail(asset_id: Any, *, settings_factory: SettingsFactory | None = None) -> bytes:
    """``GET /scenario/assets/{asset_id}/thumbnail``: JPEG bytes, at most ``THUMB_SIDE`` pixels a side."""
    aid = spec.check_id("assetId", asset_id, "asset_id")
    from .credentials import resolve_settings

    settings = (settings_factory or resolve_settings)()
    key = (settings.base_url, aid)
    hit = THUMBS.get(key)
    if hit is not None:
        return hit

    async def ask(client: ScenarioClient) -> Any:
        return await client.download_asset(aid)

    data = await _with_client(lambda: settings, ask)
    small = await asyncio.to_thread(_shrink, data)
    THUMBS.put(key, small)
    return small
