"""What the pack's frontend extension asks the server: model info, price quotes, status.

The answers behind the routes in :mod:`nodes.routes`, written as plain async
functions (:func:`model_info`, :func:`quote`, :func:`status`) so they are
tested against the emulator without aiohttp:

* :func:`model_info`: the model's family and what that family allows
  (modalities, how many at once, guidance and size ranges), so the node can
  offer only valid modality choices. Answers are cached per process for a
  few minutes: the frontend asks again whenever a node is loaded.
* :func:`model_list`: the model picker's list (ControlNet-capable models,
  the account's own LoRAs and compositions by default), cached and paginated.
* :func:`quote`: a free dry-run price (Scenario answers HTTP 269, no job is
  created) for the generate node's current widget values.
* :func:`status`: whether a key is configured and which API the pack talks
  to (the local emulator or Scenario). Never any key material.

Each call builds its own :class:`ScenarioClient` (one per request, hence
always on the running event loop) and closes it. Credentials come from
:func:`nodes.credentials.resolve_settings`, exactly as for the nodes; they
never appear in an answer or a log line.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from ..scenario_api import declared_inputs, spec
from ..scenario_api.client import ScenarioClient
from ..scenario_api.config import DEFAULT_BASE_URL, ENV_URL, Settings, normalise_base_url
from ..scenario_api.downloads import is_loopback as host_is_loopback  # the protocol layer's URL helpers
from ..scenario_api.downloads import safe_url
from ..scenario_api.errors import ConfigurationError, ValidationError
from ..scenario_api.models import ControlNetRequest
from ..scenario_api.retry import RetryPolicy
from . import plan
from .credentials import resolve_settings
from .request_builder import SOURCE_WIDGETS, WIDGETS, build_request

log = logging.getLogger("scenario_controlnet")

MODEL_CACHE_TTL = 300.0  # seconds; a model's family does not change
MODEL_CACHE_MAX = 256  # ids are typed by users: keep the cache bounded
ROUTE_TIMEOUT = 20.0  # seconds; the badge must not wait on long retry chains
MAX_BATCH = 1024
QUOTE_SIZE = 512  # width/height 0 ("from the control image") are priced at this size
# The widget values a quote reads (the images are placeholders, see below).
QUOTED_WIDGETS = WIDGETS - set(SOURCE_WIDGETS)
PLACEHOLDER_PROMPT = "price quote"
REQUEST_TIMEOUT = 10.0  # seconds per HTTP call to Scenario
# Fewer, shorter retries than a node run: a badge that is briefly stale is
# better than one that waits a minute; the frontend asks again on the next change.
ROUTE_RETRY = RetryPolicy(max_attempts=3, base=0.5, cap=4.0, max_wait=8.0)

# Scenario prices a dry run from the model, the sizes, the steps and the
# number of samples; the control map's content does not change the price. The
# dry run still needs a valid map (and, for img2img, an init image), so a tiny
# gray PNG stands in: no upload, and a small request body. It is written out
# here (an 8 x 8 mid-gray PNG) so that importing the pack encodes nothing.
PLACEHOLDER_IMAGE = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAEklEQVR4AWNsYIAAJijNQB4DACYIAJA3RdEXAAAAAElFTkSuQmCC"
)

# --------------------------------------------------------------------------- settings and client

SettingsFactory = Callable[[], Settings]


async def _with_client(
    settings_factory: SettingsFactory | None, work: Callable[[ScenarioClient], Awaitable[Any]]
) -> Any:
    """Run ``work`` with a fresh client on the current loop, bounded in time, then close it."""
    settings = (settings_factory or resolve_settings)()
    settings.require_credentials()

    async def run() -> Any:
        async with ScenarioClient(settings, retry=ROUTE_RETRY, timeout=REQUEST_TIMEOUT) as client:
            return await work(client)

    return await asyncio.wait_for(run(), ROUTE_TIMEOUT)


# --------------------------------------------------------------------------- model info

_model_cache: dict[tuple[str, str | None, str], tuple[float, dict[str, Any]]] = {}


def clear_model_cache() -> None:
    """Forget cached model answers (tests; a changed key or API URL)."""
    _model_cache.clear()


def describe_family(
    model_id: str,
    model_type: str | None,
    family: str,
    custom: bool,
    capabilities: Any = (),
    declared: declared_inputs.DeclaredModel | None = None,
) -> dict[str, Any]:
    """The model's identity plus what its family allows (:func:`spec.describe_family`, the one source).

    A custom model adds its declared inputs' summary (``declared``: roles, limits, ``price_widgets``).
    """
    rules = spec.describe_family(family, capabilities, model_id, declared)
    return {"model_id": model_id, "type": model_type, "custom": custom, **rules}


async def model_info(model_id: Any, *, settings_factory: SettingsFactory | None = None) -> dict[str, Any]:
    """``GET /scenario/models/{model_id}``: the model's family and its allowed values.

    The id is checked before anything else, so a malformed id (``../x``)
    never reaches Scenario. Successful answers are cached per process for
    :data:`MODEL_CACHE_TTL` seconds, keyed by API URL, project and id.
    """
    mid = spec.check_id("modelId", model_id, "model_id")
    settings = (settings_factory or resolve_settings)()
    key = (settings.base_url, settings.project_id, mid)
    now = time.monotonic()
    hit = _model_cache.get(key)
    if hit is not None and now - hit[0] < MODEL_CACHE_TTL:
        return copy.deepcopy(hit[1])

    async def lookup(client: ScenarioClient) -> Any:
        return await client.get_model(mid)

    model = await _with_client(lambda: settings, lookup)
    info = describe_family(
        model.model_id or mid,
        model.type,
        model.family,
        model.custom,
        model.capabilities,
        model.declared if model.custom else None,
    )
    info["model_id"] = mid  # answer for the id that was asked
    if len(_model_cache) >= MODEL_CACHE_MAX:
        oldest = min(_model_cache, key=lambda k: _model_cache[k][0])
        _model_cache.pop(oldest, None)
    _model_cache[key] = (now, info)
    return copy.deepcopy(info)


# --------------------------------------------------------------------------- the model picker

MODEL_LIST_TTL = 300.0  # seconds; a new private model shows up after this, or at once with refresh
MODEL_LIST_MAX_PAGES = 50  # Scenario pages of up to MODEL_LIST_PAGE_SIZE rows
MODEL_LIST_PAGE_SIZE = 100
PICKER_PAGE_DEFAULT = 50
PICKER_PAGE_MAX = 200
MODEL_SCOPES = {"mine": None, "public": "public"}  # None = Scenario's default: the account's private models
_list_cache: dict[tuple[Any, ...], tuple[float, list[dict[str, Any]]]] = {}


def clear_model_list_cache() -> None:
    """Forget the cached model lists (tests; a changed key or API URL)."""
    _list_cache.clear()


def picker_row(model: Any) -> dict[str, Any]:
    """One model as the picker shows it: id, name, type, and how the pack sends it.

    ``path``: ``custom`` (``/generate/custom/{id}``, its declared inputs),
    ``legacy`` (the ControlNet endpoints), or ``lora_input`` (a LoRA type
    that only runs through a custom base's LoRA input). ``use`` says which
    widget takes it: ``model_id`` and/or ``loras``.
    """
    kind = "base"
    t = (model.type or "").lower()
    if t.endswith("-lora"):
        kind = "lora"
    elif t.endswith("-composition"):
        kind = "composition"
    if model.custom:
        path = "custom"
    elif model.family != spec.CUSTOM:
        path = "legacy"
    else:
        path = "lora_input"
    use = []
    if path in ("custom", "legacy"):
        use.append("model_id")
    if kind in ("lora", "composition"):
        use.append("loras")
    return {
        "model_id": model.model_id,
        "name": model.name or model.model_id,
        "type": model.type,
        "kind": kind,
        "privacy": model.raw.get("privacy"),
        "path": path,
        "use": use,
    }


async def model_list(query: Mapping[str, Any], *, settings_factory: SettingsFactory | None = None) -> dict[str, Any]:
    """``GET /scenario/models``: ControlNet-capable models for the picker, cached and paginated.

    Query: ``scope`` (``mine``, the default: the account's own private models,
    LoRAs and compositions included; or ``public``), ``type`` (e.g.
    ``flux.1-lora``), ``cursor`` (from ``next_cursor``), ``limit`` (1-200,
    default 50), ``refresh=1`` (ask Scenario again now). Every page of
    Scenario's list is read once per :data:`MODEL_LIST_TTL` seconds and
    account; rows without the ``controlnet`` capability are left out.
    Answer: ``{"models": [row...], "next_cursor": str | null, "total": n,
    "scope": ..., "age_seconds": s}`` (row: :func:`picker_row`).
    """
    scope = str(query.get("scope") or "mine")
    if scope not in MODEL_SCOPES:
        raise ValidationError("scope", scope, "mine or public", param="scope")
    model_type = query.get("type") or None
    if model_type is not None and (not isinstance(model_type, str) or not spec.MODEL_ID_RE.match(model_type)):
        raise ValidationError("type", model_type, "a model type such as flux.1-lora or custom", param="type")
    try:
        offset = int(query.get("cursor") or 0)
        limit = int(query.get("limit") or PICKER_PAGE_DEFAULT)
    except (TypeError, ValueError):
        raise ValidationError(
            "cursor", query.get("cursor"), "the next_cursor of an earlier answer, and a numeric limit", param="cursor"
        ) from None
    if offset < 0 or not 1 <= limit <= PICKER_PAGE_MAX:
        raise ValidationError("limit", limit, f"an integer from 1 to {PICKER_PAGE_MAX}", param="limit")
    settings = (settings_factory or resolve_settings)()
    settings.require_credentials()
    creds = settings.credentials
    key = (settings.base_url, settings.project_id, creds.key_digest if creds else "", scope, model_type)
    now = time.monotonic()
    hit = _list_cache.get(key)
    if hit is None or now - hit[0] >= MODEL_LIST_TTL or str(query.get("refresh") or "") in ("1", "true"):

        async def fetch(client: ScenarioClient) -> Any:
            return await client.list_models(
                privacy=MODEL_SCOPES[scope],
                model_type=model_type,
                page_size=MODEL_LIST_PAGE_SIZE,
                max_pages=MODEL_LIST_MAX_PAGES,
            )

        models = await _with_client(lambda: settings, fetch)
        rows = [picker_row(m) for m in models if declared_inputs.can_do_controlnet(m.raw)]
        rows.sort(key=lambda r: (r["kind"] != "base", r["name"].lower()))
        hit = (now, rows)
        _list_cache[key] = hit
    rows = hit[1]
    page = copy.deepcopy(rows[offset : offset + limit])
    nxt = offset + limit
    return {
        "models": page,
        "next_cursor": str(nxt) if nxt < len(rows) else None,
        "total": len(rows),
        "scope": scope,
        "age_seconds": round(now - hit[0], 1),
    }


# --------------------------------------------------------------------------- quote


def _batch(value: Any) -> int:
    allowed = f"an integer from 1 to {MAX_BATCH} (the number of control images, one job each)"
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        raise ValidationError("batch", value, allowed, param="batch")
    if not 1 <= int(value) <= MAX_BATCH:
        raise ValidationError("batch", value, allowed, param="batch")
    return int(value)


def quote_request(payload: Any) -> tuple[ControlNetRequest, int]:
    """Turn the generate node's widget values into a dry-run request and a job count.

    The same widget checks as the node's ``VALIDATE_INPUTS`` run first (errors
    name the widget), then the values are mapped as the node maps them:
    ``scheduler`` "default" and ``control_start``/``control_end`` -1 are not
    sent. Differences, all price-neutral:

    * an empty prompt is replaced by a placeholder (the node itself still
      refuses an empty prompt when it runs);
    * the control map (and the init image when ``img2img``) is
      :data:`PLACEHOLDER_IMAGE`;
    * width/height 0 (derived from the control image on the node) are priced
      at :data:`QUOTE_SIZE` here; :func:`quote` prices the map's real size
      instead when the browser sends it (``map_size``), else the last run's
      (``run_size``).
    """
    if not isinstance(payload, Mapping):
        raise ValidationError("body", payload, "a JSON object holding the node's widget values", param="body")
    img2img = payload.get("img2img", False)
    if not isinstance(img2img, bool):
        raise ValidationError("img2img", img2img, "true or false", param="img2img")
    batch = _batch(payload.get("batch", 1))
    widgets = {name: value for name, value in payload.items() if name in QUOTED_WIDGETS}
    prompt = widgets.get("prompt")
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        widgets["prompt"] = PLACEHOLDER_PROMPT
    request = build_request(widgets, img2img=img2img)
    request = replace(
        request,
        width=request.width or QUOTE_SIZE,
        height=request.height or QUOTE_SIZE,
        control_image=PLACEHOLDER_IMAGE,
        image=PLACEHOLDER_IMAGE if img2img else None,
    )
    return request, batch


async def quote(payload: Any, *, settings_factory: SettingsFactory | None = None) -> dict[str, Any]:
    """``POST /scenario/quote``: the dry-run price of one job, times ``batch`` jobs.

    Validation (the same strict, family-aware rules as a real run) happens
    in the client before the dry run is sent; an invalid value answers 400
    naming the widget.
    """
    request, batch = quote_request(payload)
    follows_map = any(payload.get(k) in (None, 0) for k in ("width", "height"))
    map_size = _size_hint(payload, "map_size")
    run_size = _size_hint(payload, "run_size")
    basis = SIZE_DEFAULT

    async def ask(client: ScenarioClient) -> Any:
        nonlocal request, basis
        if follows_map and (map_size is not None or run_size is not None):
            width, height = int(payload.get("width") or 0), int(payload.get("height") or 0)
            if map_size is not None:
                # The map's real size, derived exactly as the node derives it for this model's family.
                model = await client.get_model(request.model_id)  # cached by the client; the quote needs it too
                w, h = plan.output_size(width, height, map_size, model.family)
                basis = SIZE_MAP
            else:
                assert run_size is not None
                w, h = (run_size[0] if width == 0 else width), (run_size[1] if height == 0 else height)
                basis = SIZE_LAST_RUN
            request = replace(request, width=w, height=h)
        return await client.quote(request)

    price = await _with_client(settings_factory, ask)
    per_job = float(price.creative_units)
    log.debug("Scenario quote for %s: %s CU per job x %d", request.model_id, per_job, batch)
    answer: dict[str, Any] = {"creative_units": round(per_job * batch, 6), "per_job": per_job, "jobs": batch}
    if follows_map:
        # The real size follows the control image: say which size was priced, and why that one.
        answer["priced_size"] = [request.width, request.height]
        answer["size_basis"] = basis
    return answer


SIZE_MAP, SIZE_LAST_RUN, SIZE_DEFAULT = "map", "last_run", "default"
MAX_HINT_SIDE = 16384


def _size_hint(payload: Mapping[str, Any], name: str) -> tuple[int, int] | None:
    """``map_size`` (the control map's pixels, when the browser knows them) or ``run_size`` (the last run's
    output size): ``[width, height]`` of positive integers, or absent."""
    value = payload.get(name)
    if value is None:
        return None
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(not isinstance(v, bool) and isinstance(v, int) and 1 <= v <= MAX_HINT_SIDE for v in value)
    )
    if not ok:
        raise ValidationError(
            name, value, f"[width, height]: two integers from 1 to {MAX_HINT_SIDE}, or absent", param=name
        )
    return int(value[0]), int(value[1])


# --------------------------------------------------------------------------- status


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine (the local emulator)."""
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(".localhost") or host_is_loopback(host)


def status(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``GET /scenario/status``: configured or not, and which API; never key material."""
    env = os.environ if env is None else env
    raw = (env.get(ENV_URL) or "").strip() or DEFAULT_BASE_URL
    try:
        base_url = safe_url(normalise_base_url(raw))  # no query or fragment: they could hold tokens
    except ConfigurationError:
        # Do not echo the raw value: it may carry credentials.
        return {
            "configured": False,
            "base_url": "",
            "emulator": False,
            "error": f"Scenario: {ENV_URL} is not a valid http(s) URL such as {DEFAULT_BASE_URL}",
        }
    answer: dict[str, Any] = {"configured": True, "base_url": base_url, "emulator": is_loopback(base_url)}
    try:
        resolve_settings(env)
    except ConfigurationError as exc:
        answer["configured"] = False
        answer["error"] = str(exc)
    return answer
