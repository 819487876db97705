"""HTTP routes for the pack's frontend extension (web/scenario.js): the aiohttp wiring.

Registered on ComfyUI's server under ``/scenario/`` (ComfyUI also serves
them under ``/api/scenario/``, which is what the frontend's ``api.fetchApi``
calls):

* ``GET /scenario/models/{model_id}``: :func:`nodes.web_api.model_info`;
* ``GET /scenario/models``: :func:`nodes.web_api.model_list` (the model picker);
* ``POST /scenario/quote``: :func:`nodes.web_api.quote` (a free dry run);
* ``GET /scenario/status``: :func:`nodes.web_api.status`;
* ``GET /scenario/credentials``: :func:`nodes.web_credentials.status`;
* ``POST /scenario/credentials``: :func:`nodes.web_credentials.save`;
* ``POST /scenario/credentials/clear``: :func:`nodes.web_credentials.clear`;
* ``POST /scenario/credentials/test``: :func:`nodes.web_credentials.test_connection`;
* ``GET /scenario/jobs``: :func:`nodes.web_jobs.recent_jobs` (the Scenario Jobs panel);
* ``POST /scenario/jobs/{job_id}/cancel``: :func:`nodes.web_jobs.cancel`;
* ``GET /scenario/assets/{asset_id}/thumbnail``: :func:`nodes.web_jobs.thumbnail` (a small JPEG).

Routes that change anything, or that carry a secret, accept only POST with a
JSON body (``Content-Type: application/json``, which a cross-site form cannot
send without the browser asking first); aiohttp answers 405 to other methods.

The answers are computed in :mod:`nodes.web_api`; this module only maps
them, and every failure, to JSON. Errors are answered as ``{"error":
"<sentence naming the field>", "code": "...", "field"?: "<widget name>"}``
with a 4xx/5xx status.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any

from ..scenario_api import (
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
from . import bridge, stack
from .errors import defuse

log = logging.getLogger("scenario_controlnet")

ROUTE_PREFIX = "/scenario"
MAX_BODY_BYTES = 64 * 1024

ROUTES = (
    ("GET", ROUTE_PREFIX + "/models/{model_id}"),
    ("POST", ROUTE_PREFIX + "/quote"),
    ("GET", ROUTE_PREFIX + "/status"),
    ("GET", ROUTE_PREFIX + "/models"),
    ("GET", ROUTE_PREFIX + "/credentials"),
    ("POST", ROUTE_PREFIX + "/credentials"),
    ("POST", ROUTE_PREFIX + "/credentials/clear"),
    ("POST", ROUTE_PREFIX + "/credentials/test"),
    ("GET", ROUTE_PREFIX + "/jobs"),
    ("POST", ROUTE_PREFIX + "/jobs/{job_id}/cancel"),
    ("GET", ROUTE_PREFIX + "/assets/{asset_id}/thumbnail"),
)

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
        return 504, {"error": f"Scenario: no answer within {stack.ROUTE_TIMEOUT:g} s", "code": "timeout"}
    if isinstance(exc, ScenarioError):
        http_status, code = 502, "upstream"
        for cls, st, cd in _STATUS_BY_ERROR:
            if isinstance(exc, cls):
                http_status, code = st, cd
                break
        text = defuse(str(exc)) or ""
        body: dict[str, Any] = {"error": text if text.startswith("Scenario") else "Scenario: " + text, "code": code}
        if isinstance(exc, ValidationError):
            body["field"] = exc.param
        return http_status, body
    return 500, {"error": "Scenario: internal error in the pack's route (see the ComfyUI log)", "code": "internal"}


# --------------------------------------------------------------------------- aiohttp wiring


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


async def _get_model(request: Any) -> Any:
    return await _answer(stack.model_info(request.match_info.get("model_id", "")))


async def _post_quote(request: Any) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _json({"error": f"Scenario: request body above {MAX_BODY_BYTES} bytes", "code": "validation"}, 413)
    try:
        payload = await request.json()
    except Exception:
        return _json(
            {
                "error": "Scenario: the quote request body must be a JSON object",
                "code": "validation",
                "field": "body",
            },
            400,
        )
    return await _answer(stack.quote(payload))


async def _get_status(request: Any) -> Any:
    return await _answer(_as_awaitable(stack.status()))


async def _get_models(request: Any) -> Any:
    return await _answer(stack.model_list(dict(request.query)))


async def _get_credentials(request: Any) -> Any:
    return await _answer(_call(stack.web_credentials.status))


async def _post_credentials(request: Any) -> Any:
    payload, refusal = await _json_body(request, "the credentials")
    if refusal is not None:
        return refusal
    return await _answer(_call(stack.web_credentials.save, payload))


async def _post_clear(request: Any) -> Any:
    _, refusal = await _json_body(request, "the clear request", empty_ok=True)
    if refusal is not None:
        return refusal
    return await _answer(_call(stack.web_credentials.clear))


async def _post_test(request: Any) -> Any:
    _, refusal = await _json_body(request, "the test request", empty_ok=True)
    if refusal is not None:
        return refusal
    return await _answer(stack.web_credentials.test_connection())


async def _get_jobs(request: Any) -> Any:
    return await _answer(stack.web_jobs.recent_jobs(request.query.get("limit")))


async def _post_cancel(request: Any) -> Any:
    _, refusal = await _json_body(request, "the cancel request", empty_ok=True)
    if refusal is not None:
        return refusal
    return await _answer(stack.web_jobs.cancel(request.match_info.get("job_id", "")))


async def _get_thumbnail(request: Any) -> Any:
    from aiohttp import web

    try:
        data = await stack.web_jobs.thumbnail(request.match_info.get("asset_id", ""))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        code, body = error_payload(exc)
        if code == 500:
            log.exception("Scenario thumbnail route failed")
        return _json(body, code)
    return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def register_routes(routes: Any) -> None:
    """Add the routes to an aiohttp ``RouteTableDef`` (ComfyUI's ``PromptServer.instance.routes``).

    Idempotent: a table that already holds our routes is left alone (aiohttp
    refuses a second handler for the same method and path at startup).
    """
    present = {(getattr(r, "method", None), getattr(r, "path", None)) for r in list(routes)}

    handlers = {
        ROUTES[0]: _get_model,
        ROUTES[1]: _post_quote,
        ROUTES[2]: _get_status,
        ROUTES[3]: _get_models,
        ROUTES[4]: _get_credentials,
        ROUTES[5]: _post_credentials,
        ROUTES[6]: _post_clear,
        ROUTES[7]: _post_test,
        ROUTES[8]: _get_jobs,
        ROUTES[9]: _post_cancel,
        ROUTES[10]: _get_thumbnail,
    }
    for (method, path), handler in handlers.items():
        if (method, path) not in present:
            routes.route(method, path)(handler)


async def _as_awaitable(value: dict[str, Any]) -> dict[str, Any]:
    return value


async def _call(fn: Any, *args: Any) -> dict[str, Any]:
    """Run a synchronous answer inside :func:`_answer` (so its errors become JSON too)."""
    return fn(*args)


def _refuse(status_code: int, text: str) -> Any:
    return _json({"error": "Scenario: " + text, "code": "validation", "field": "body"}, status_code)


async def _json_body(request: Any, what: str, *, empty_ok: bool = False) -> tuple[Any, Any]:
    """``(payload, None)`` for a JSON object body, else ``(None, error response)``.

    Requires ``Content-Type: application/json`` even for an empty body (a
    cross-site form cannot set it without a CORS preflight, which ComfyUI
    does not grant); never echoes the body (it may hold a secret).
    ``empty_ok`` accepts an empty body as ``{}``.
    """
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return None, _refuse(413, f"request body above {MAX_BODY_BYTES} bytes")
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        return None, _refuse(413, f"request body above {MAX_BODY_BYTES} bytes")
    if (request.content_type or "").lower() != "application/json":
        return None, _refuse(415, f"{what} must be sent as JSON (Content-Type: application/json)")
    if empty_ok and not raw.strip():
        return {}, None
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, _refuse(400, f"{what} must be a JSON object")
    if not isinstance(payload, dict):
        return None, _refuse(400, f"{what} must be a JSON object")
    return payload, None


def try_register() -> bool:
    """Register the routes on ComfyUI's server if there is one; never raises.

    Returns False outside ComfyUI (tests, scripts) or if registration failed,
    so the nodes still load without the frontend extras. Only a ``server``
    module ComfyUI already imported is used (see :func:`bridge.prompt_server`).
    """
    try:
        instance = bridge.prompt_server()
        routes = getattr(instance, "routes", None) if instance is not None else None
        if routes is None:
            return False
        register_routes(routes)
        return True
    except Exception as exc:
        log.warning("Scenario: the web routes could not be registered (%s); nodes still work", type(exc).__name__)
        return False
