"""HTTP routes for the pack's frontend extension (web/scenario.js).

Three read-only routes, registered on ComfyUI's server under ``/scenario/``
(ComfyUI also serves them under ``/api/scenario/``, which is what the
frontend's ``api.fetchApi`` calls):

* ``GET /scenario/models/{model_id}``: the model's family and what that family
  allows (modalities, how many at once, guidance and size ranges), so the
  node can offer only valid modality choices. Answers are cached per process
  for a few minutes: the frontend asks again whenever a node is loaded.
* ``POST /scenario/quote``: a free dry-run price (Scenario answers HTTP 269,
  no job is created) for the generate node's current widget values.
* ``GET /scenario/status``: whether a key is configured and which API the
  pack talks to (the local emulator or Scenario). Never any key material.

The route logic is written as plain async functions (:func:`model_info`,
:func:`quote`, :func:`status`) so it is tested against the emulator without
aiohttp; :func:`register_routes` only adds thin aiohttp wrappers. Each call
builds its own :class:`ScenarioClient` (one per request, hence always on the
running event loop) and closes it. Credentials come from
:func:`nodes.credentials.resolve_settings`, exactly as for the nodes; they
never appear in an answer or a log line.

Errors are answered as ``{"error": "<sentence naming the field>", "code":
"...", "field"?: "<widget name>"}`` with a 4xx/5xx status.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import ipaddress
import logging
import os
import struct
import time
import zlib
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from ..scenario_api import spec
from ..scenario_api.client import ScenarioClient
from ..scenario_api.config import DEFAULT_BASE_URL, ENV_URL, Settings, normalise_base_url
from ..scenario_api.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ForbiddenError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitedError,
    ScenarioError,
    ScenarioTimeoutError,
    ValidationError,
)
from ..scenario_api.models import ControlNetRequest
from ..scenario_api.retry import RetryPolicy
from . import bridge
from .credentials import resolve_settings
from .inputs import DEFAULT_MODALITY, SCHEDULER_DEFAULT, UNSET
from .validation import check_widgets

log = logging.getLogger("scenario_controlnet")

ROUTE_PREFIX = "/scenario"
MODEL_CACHE_TTL = 300.0  # seconds; a model's family does not change
MODEL_CACHE_MAX = 256  # ids are typed by users: keep the cache bounded
ROUTE_TIMEOUT = 20.0  # seconds; the badge must not wait on long retry chains
MAX_BODY_BYTES = 64 * 1024
MAX_BATCH = 1024
QUOTE_SIZE = 512  # width/height 0 ("from the control image") are priced at this size
PLACEHOLDER_PROMPT = "price quote"
REQUEST_TIMEOUT = 10.0  # seconds per HTTP call to Scenario
# Fewer, shorter retries than a node run: a badge that is briefly stale is
# better than one that waits a minute; the frontend asks again on the next change.
ROUTE_RETRY = RetryPolicy(max_attempts=3, base=0.5, cap=4.0, max_wait=8.0)

# --------------------------------------------------------------------------- placeholder image


def _png(width: int, height: int, gray: int = 128) -> bytes:
    """A tiny single-channel PNG built with the standard library only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    rows = b"".join(b"\x00" + bytes([gray]) * width for _ in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# Scenario prices a dry run from the model, the sizes, the steps and the
# number of samples; the control map's content does not change the price. The
# dry run still needs a valid map (and, for img2img, an init image), so a tiny
# gray PNG stands in: no upload, and a small request body.
PLACEHOLDER_IMAGE = "data:image/png;base64," + base64.b64encode(_png(8, 8)).decode("ascii")

# --------------------------------------------------------------------------- errors

_STATUS_BY_ERROR: tuple[tuple[type[ScenarioError], int, str], ...] = (
    (ValidationError, 400, "validation"),
    (ConfigurationError, 400, "configuration"),
    (NotFoundError, 404, "not_found"),
    (InsufficientCreditsError, 400, "credits"),
    (AuthenticationError, 400, "auth"),
    (ForbiddenError, 400, "forbidden"),
    (BadRequestError, 400, "rejected"),
    (RateLimitedError, 429, "rate_limited"),
    (ScenarioTimeoutError, 504, "timeout"),
)


def error_payload(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body for an exception raised by a route function.

    Problems the user must fix in ComfyUI or in their Scenario account answer
    4xx; Scenario or network failures answer 502/504. Upstream auth failures
    are 400, not 401, so the browser never mistakes them for a ComfyUI login
    prompt. Texts are the exceptions' own user-facing sentences, which never
    hold a credential.
    """
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) and not isinstance(exc, ScenarioError):
        return 504, {"error": f"Scenario: no answer within {ROUTE_TIMEOUT:g} s", "code": "timeout"}
    if isinstance(exc, ScenarioError):
        status, code = 502, "upstream"
        for cls, st, cd in _STATUS_BY_ERROR:
            if isinstance(exc, cls):
                status, code = st, cd
                break
        text = str(exc)
        body: dict[str, Any] = {"error": text if text.startswith("Scenario") else "Scenario: " + text, "code": code}
        if isinstance(exc, ValidationError):
            body["field"] = exc.param
        return status, body
    return 500, {"error": "Scenario: internal error in the pack's route (see the ComfyUI log)", "code": "internal"}


# --------------------------------------------------------------------------- settings and client

SettingsFactory = Callable[[], Settings]


async def _with_client(settings_factory: SettingsFactory | None, work: Callable[[ScenarioClient], Awaitable[Any]]) -> Any:
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


def describe_family(model_id: str, model_type: str | None, family: str, custom: bool) -> dict[str, Any]:
    """What a family allows, from :mod:`scenario_api.spec` (the one source of truth)."""
    modalities = list(spec.MODALITIES_BY_FAMILY.get(family, ())) + list(spec.PRESETS_BY_FAMILY.get(family, ()))
    guidance = spec.FAMILY_RANGES.get(family, {}).get("guidance", (spec.RULES["guidance"].lo, spec.RULES["guidance"].hi))
    info: dict[str, Any] = {
        "model_id": model_id,
        "family": family,
        "family_label": spec.family_label(family),
        "type": model_type,
        "custom": custom,
        "modalities": modalities,
        "max_modalities": spec.MAX_MODALITIES.get(family, 0),
        "guidance_range": [float(guidance[0]), float(guidance[1])],
        "size_range": {
            "width": list(spec.size_range("width", family)),
            "height": list(spec.size_range("height", family)),
            "multiple_of": spec.RULES["width"].multiple_of,
        },
        "controlnet": family != spec.CUSTOM,
    }
    if family == spec.CUSTOM:
        info["note"] = "custom models do not run on the ControlNet endpoints; use a Flux, SDXL or SD 1.5 model"
    return info


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
    info = describe_family(model.model_id or mid, model.type, model.family, model.custom)
    info["model_id"] = mid  # answer for the id that was asked
    if len(_model_cache) >= MODEL_CACHE_MAX:
        oldest = min(_model_cache, key=lambda k: _model_cache[k][0])
        _model_cache.pop(oldest, None)
    _model_cache[key] = (now, info)
    return copy.deepcopy(info)


# --------------------------------------------------------------------------- quote


def _optional(payload: Mapping[str, Any], name: str) -> Any:
    value = payload.get(name)
    return None if value is None or value == "" else value


def modality_string(modality: Any, strength: Any, modalities: Any) -> str:
    """The modality sent to Scenario, built exactly as the generate nodes build it.

    A non-empty ``modalities`` (full grammar) wins; otherwise
    ``modality:modality_strength`` (see ``nodes/plan.py``).
    """
    if isinstance(modalities, str) and modalities.strip():
        return modalities.strip()
    if strength is None:
        strength = 1.0
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not (
        spec.WEIGHT_MIN_EXCLUSIVE < float(strength) <= spec.WEIGHT_MAX
    ):
        raise ValidationError("modality_strength", strength, "a number in (0, 1]", param="modality_strength")
    return str(spec.ModalityItem(str(modality), float(strength)))


def _batch(value: Any) -> int:
    allowed = f"an integer from 1 to {MAX_BATCH} (the number of control images, one job each)"
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        raise ValidationError("batch", value, allowed, param="batch")
    if not 1 <= int(value) <= MAX_BATCH:
        raise ValidationError("batch", value, allowed, param="batch")
    return int(value)


def _size(value: Any) -> Any:
    """0 (or nothing) means "from the control image" on the node: priced at QUOTE_SIZE."""
    if value is None or (not isinstance(value, bool) and isinstance(value, (int, float)) and value == 0):
        return QUOTE_SIZE
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
      at :data:`QUOTE_SIZE`.
    """
    if not isinstance(payload, Mapping):
        raise ValidationError("body", payload, "a JSON object holding the node's widget values", param="body")
    modality = payload.get("modality", DEFAULT_MODALITY)
    check_widgets(
        model_id=payload.get("model_id"),
        modality=modality,
        modalities=payload.get("modalities"),
        width=payload.get("width"),
        height=payload.get("height"),
        control_start=payload.get("control_start"),
        control_end=payload.get("control_end"),
    )
    prompt = payload.get("prompt")
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        prompt = PLACEHOLDER_PROMPT
    model_id = spec.check_id("modelId", payload.get("model_id"), "model_id")
    scheduler = payload.get("scheduler")
    control = {name: _optional(payload, name) for name in ("control_start", "control_end")}
    img2img = payload.get("img2img", False)
    if not isinstance(img2img, bool):
        raise ValidationError("img2img", img2img, "true or false", param="img2img")
    request = ControlNetRequest(
        prompt=prompt,
        model_id=model_id,
        modality=modality_string(modality, payload.get("modality_strength"), payload.get("modalities")),
        control_image=PLACEHOLDER_IMAGE,
        image=PLACEHOLDER_IMAGE if img2img else None,
        strength=_optional(payload, "strength") if img2img else None,
        num_samples=_optional(payload, "num_samples"),
        guidance=_optional(payload, "guidance"),
        num_inference_steps=_optional(payload, "num_inference_steps"),
        width=_size(payload.get("width")),
        height=_size(payload.get("height")),
        scheduler=None if scheduler in (None, "", SCHEDULER_DEFAULT) else scheduler,
        seed=_optional(payload, "seed"),
        control_start=None if control["control_start"] in (None, UNSET) else control["control_start"],
        control_end=None if control["control_end"] in (None, UNSET) else control["control_end"],
    )
    return request, _batch(payload.get("batch", 1))


async def quote(payload: Any, *, settings_factory: SettingsFactory | None = None) -> dict[str, Any]:
    """``POST /scenario/quote``: the dry-run price of one job, times ``batch`` jobs.

    Validation (the same strict, family-aware rules as a real run) happens
    in the client before the dry run is sent; an invalid value answers 400
    naming the widget.
    """
    request, batch = quote_request(payload)

    async def ask(client: ScenarioClient) -> Any:
        return await client.quote(request)

    price = await _with_client(settings_factory, ask)
    per_job = float(price.creative_units)
    log.debug("Scenario quote for %s: %s CU per job x %d", request.model_id, per_job, batch)
    return {"creative_units": round(per_job * batch, 6), "per_job": per_job, "jobs": batch}


# --------------------------------------------------------------------------- status


def _display_url(url: str) -> str:
    """``scheme://host[:port]/path`` only: no query or fragment (they could hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine (the local emulator)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def status(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``GET /scenario/status``: configured or not, and which API; never key material."""
    env = os.environ if env is None else env
    raw = (env.get(ENV_URL) or "").strip() or DEFAULT_BASE_URL
    try:
        base_url = _display_url(normalise_base_url(raw))
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


# --------------------------------------------------------------------------- aiohttp wiring

ROUTES = (
    ("GET", ROUTE_PREFIX + "/models/{model_id}"),
    ("POST", ROUTE_PREFIX + "/quote"),
    ("GET", ROUTE_PREFIX + "/status"),
)


def _json(body: dict[str, Any], status: int = 200) -> Any:
    from aiohttp import web  # ComfyUI ships aiohttp; only needed once a request is served

    return web.json_response(body, status=status)


async def _answer(work: Awaitable[dict[str, Any]]) -> Any:
    try:
        return _json(await work)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every failure becomes a JSON error, never a traceback page
        code, body = error_payload(exc)
        if code == 500:
            log.exception("Scenario route failed")
        else:
            log.debug("Scenario route answered %d: %s", code, body["error"])
        return _json(body, code)


def register_routes(routes: Any) -> None:
    """Add the three routes to an aiohttp ``RouteTableDef`` (ComfyUI's ``PromptServer.instance.routes``).

    Idempotent: a table that already holds our routes is left alone (aiohttp
    refuses a second handler for the same method and path at startup).
    """
    present = {(getattr(r, "method", None), getattr(r, "path", None)) for r in list(routes)}

    async def get_model(request: Any) -> Any:
        return await _answer(model_info(request.match_info.get("model_id", "")))

    async def post_quote(request: Any) -> Any:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _json({"error": f"Scenario: request body above {MAX_BODY_BYTES} bytes", "code": "validation"}, 413)
        try:
            payload = await request.json()
        except Exception:
            return _json(
                {"error": "Scenario: the quote request body must be a JSON object", "code": "validation", "field": "body"},
                400,
            )
        return await _answer(quote(payload))

    async def get_status(request: Any) -> Any:
        return await _answer(_as_awaitable(status()))

    handlers = {ROUTES[0]: get_model, ROUTES[1]: post_quote, ROUTES[2]: get_status}
    for (method, path), handler in handlers.items():
        if (method, path) not in present:
            routes.route(method, path)(handler)


async def _as_awaitable(value: dict[str, Any]) -> dict[str, Any]:
    return value


def try_register() -> bool:
    """Register the routes on ComfyUI's server if there is one; never raises.

    Returns False outside ComfyUI (tests, scripts) or if registration failed,
    so the nodes still load without the frontend extras.
    """
    try:
        server = bridge._module("server")  # noqa: SLF001 - the bridge's guarded lazy import
        prompt_server = getattr(server, "PromptServer", None) if server else None
        instance = getattr(prompt_server, "instance", None) if prompt_server else None
        routes = getattr(instance, "routes", None) if instance else None
        if routes is None:
            return False
        register_routes(routes)
        return True
    except Exception as exc:
        log.warning("Scenario: the web routes could not be registered (%s); nodes still work", type(exc).__name__)
        return False
