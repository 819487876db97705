"""The authenticated ``/v1`` routes other than generation: jobs, assets, models.

:data:`ROUTES` maps (method, path regex) to handlers; :func:`dispatch`
answers 404 for unknown paths and 405 for a known path with the wrong method.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .. import spec
from ..errors import ValidationError
from . import models_catalog, render
from .context import Context
from .custom import handle_custom
from .generate import handle_generate
from .messages import HttpError, Request, Response
from .state import AssetRecord, new_id

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 200

Handler = Callable[[Context, Request, "re.Match[str]"], Response]


def _bad(field: str, value: Any, allowed: str) -> HttpError:
    return HttpError(400, str(ValidationError(field, value, allowed)))


# --------------------------------------------------------------------------- assets


def asset_payload(ctx: Context, req: Request, asset: AssetRecord) -> dict[str, Any]:
    view = asset.view()
    view["url"] = ctx.signer.sign(req.origin, asset.id, ctx.config.url_ttl)
    return view


def get_asset(ctx: Context, req: Request, m: re.Match[str]) -> Response:
    asset_id = m.group(1)
    asset = ctx.store.get_asset(asset_id)
    if asset is None:
        raise HttpError(404, f"Asset {asset_id} not found")
    return Response.json(200, {"asset": asset_payload(ctx, req, asset)})


def upload_asset(ctx: Context, req: Request, m: re.Match[str]) -> Response:
    body = req.json_object()
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _bad("name", name, "a non-empty asset name")
    image = body.get("image")
    allowed = "a PNG or JPEG image as a data URL or bare base64"
    if not isinstance(image, str) or not image:
        raise _bad("image", image, allowed)
    try:
        data = render.decode_base64_image(image)
        img = render.open_image(data)
    except ValueError:
        raise _bad("image", image, allowed) from None
    if img.format not in ("PNG", "JPEG", "WEBP"):
        raise _bad("image", image, allowed)
    parent_id = body.get("parentId")
    if parent_id is not None and (not isinstance(parent_id, str) or not spec.ASSET_ID_RE.match(parent_id)):
        raise _bad("parentId", parent_id, "an asset id like 'asset_…'")
    hide = body.get("hide", False)
    if not isinstance(hide, bool):
        raise _bad("hide", hide, "true or false")
    if img.format != "PNG":
        if img.mode not in ("L", "LA", "RGB", "RGBA"):
            img = img.convert("RGB")
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)
        data = buf.getvalue()
    record = AssetRecord(
        id=new_id("asset"),
        width=img.width,
        height=img.height,
        metadata={"type": "uploaded", "width": img.width, "height": img.height, "name": name},
        created=time.time(),
        data=data,
        name=name,
        hidden=hide,
        parent_id=parent_id,
    )
    ctx.store.add_asset(record)
    return Response.json(200, {"asset": asset_payload(ctx, req, record)})


# --------------------------------------------------------------------------- jobs


def get_job(ctx: Context, req: Request, m: re.Match[str]) -> Response:
    view = ctx.store.job_view(m.group(1))
    if view is None:
        raise HttpError(404, f"Job {m.group(1)} not found")
    return Response.json(200, {"job": view})


def job_action(ctx: Context, req: Request, m: re.Match[str]) -> Response:
    job_id = m.group(1)
    body = req.json_object()
    action = body.get("action")
    if ctx.store.job_view(job_id) is None:
        raise HttpError(404, f"Job {job_id} not found")
    if action != "cancel":
        raise HttpError(400, f"Unsupported action {action!r}: only 'cancel' is supported")
    view, refusal = ctx.store.cancel(job_id)
    if refusal is not None:
        raise HttpError(400, refusal)
    return Response.json(200, {"job": view})


def _encode_token(after_seq: int, page: int) -> str:
    raw = json.dumps({"a": after_seq, "p": page}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["a"]), int(data["p"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _bad("paginationToken", token, "a token from a previous page's nextPaginationToken") from None


def _parse_time(field: str, value: str) -> float:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _bad(field, value, "an ISO 8601 date such as 2025-01-31T12:00:00.000Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def list_jobs(ctx: Context, req: Request, m: re.Match[str]) -> Response:
    q = req.query
    try:
        page_size = int(q.get("pageSize", PAGE_SIZE_DEFAULT))
    except ValueError:
        raise _bad("pageSize", q.get("pageSize"), f"an integer from 1 to {PAGE_SIZE_MAX}") from None
    if not 1 <= page_size <= PAGE_SIZE_MAX:
        raise _bad("pageSize", q.get("pageSize"), f"an integer from 1 to {PAGE_SIZE_MAX}")
    after_time = _parse_time("createdAfter", q["createdAfter"]) if q.get("createdAfter") else None
    if ctx.config.ignore_created_after:
        after_time = None  # a server that ignores the filter: the client must check dates itself
    statuses = {s.strip() for s in q["status"].split(",") if s.strip()} if q.get("status") else None
    after_seq, page = _decode_token(q["paginationToken"]) if q.get("paginationToken") else (None, 0)

    matching = [
        (record, view)
        for record, view in ctx.store.list_jobs()
        if (after_time is None or record.created_wall > after_time)
        and (statuses is None or view["status"] in statuses)
        and (after_seq is None or record.seq < after_seq)
    ]
    short = ctx.config.short_pages
    cursor = after_seq if after_seq is not None else (matching[0][0].seq + 1 if matching else 0)
    if short and page % 2 == 0 and matching:
        # deliberately empty page while results remain
        return Response.json(200, {"jobs": [], "nextPaginationToken": _encode_token(cursor, page + 1)})
    size = 1 if short else page_size
    chosen, rest = matching[:size], matching[size:]
    payload: dict[str, Any] = {"jobs": [view for _, view in chosen]}
    if rest:
        payload["nextPaginationToken"] = _encode_token(chosen[-1][0].seq, page + 1)
    return Response.json(200, payload)


# --------------------------------------------------------------------------- models


MODEL_PRIVACY = ("private", "public")


def list_models(ctx: Context, req: Request, m: re.Match[str]) -> Response:
    """``GET /models``: ``privacy`` (``private``, the default, like Scenario | ``public``), ``type``,
    ``pageSize`` (default 100, at most 500) and ``paginationToken``; rows carry no ``inputs``."""
    q = req.query
    privacy = q.get("privacy", "private")
    if privacy not in MODEL_PRIVACY:
        raise _bad("privacy", privacy, "private or public")
    limit = models_catalog.PAGE_SIZE_MAX
    try:
        page_size = int(q.get("pageSize", models_catalog.PAGE_SIZE_DEFAULT))
    except ValueError:
        raise _bad("pageSize", q.get("pageSize"), f"an integer from 1 to {limit}") from None
    if not 1 <= page_size <= limit:
        raise _bad("pageSize", q.get("pageSize"), f"an integer from 1 to {limit}")
    rows = models_catalog.list_models(privacy, q.get("type") or None)
    offset, page = _decode_token(q["paginationToken"]) if q.get("paginationToken") else (0, 0)
    if ctx.config.short_pages and page % 2 == 0 and offset < len(rows):
        # deliberately empty page while results remain
        return Response.json(200, {"models": [], "nextPaginationToken": _encode_token(offset, page + 1)})
    chosen = rows[offset : offset + page_size]
    payload: dict[str, Any] = {"models": chosen}
    if offset + page_size < len(rows):
        payload["nextPaginationToken"] = _encode_token(offset + page_size, page + 1)
    return Response.json(200, payload)


def get_model(ctx: Context, req: Request, m: re.Match[str]) -> Response:
    model = models_catalog.get_model(m.group(1))
    if model is None:
        raise HttpError(404, f"Model {m.group(1)} not found")
    return Response.json(200, {"model": model})


# --------------------------------------------------------------------------- team limits

#: ``teamId`` values meaning "the key's own team": a client that does not know its team id asks for ``me``.
OWN_TEAM_ALIASES = ("me",)
INFERENCE_BATCH_SIZE = 128  # numSamples' upper bound


def team_limits(ctx: Context, req: Request, m: re.Match[str]) -> Response:
    """``GET /v1/teams/{teamId}/limits`` (reference \u00a711): the limits the emulator enforces.

    The emulator has one team, ``config.team_id`` (``team_emulator``); ``me``
    names it too. Another id answers 404; with ``team_limits_readable`` off,
    403 like a key without team scope.
    """
    config = ctx.config
    team_id = m.group(1)
    if team_id != config.team_id and team_id not in OWN_TEAM_ALIASES:
        raise HttpError(404, f"Team {team_id} not found")
    if not config.team_limits_readable:
        raise HttpError(403, "API Keys cannot access protected resources")
    return Response.json(
        200,
        {
            "teamId": config.team_id,
            "limits": {
                "parallelInferences": config.parallel_inferences,
                "parallelCustomJobs": config.parallel_custom_jobs,
                "inferenceBatchSize": INFERENCE_BATCH_SIZE,
                "minCooldown": 0,
                "maxCooldown": 0,
                "creativeUnits": round(ctx.store.balance, 2),
                "plan": "emulator",
            },
        },
    )


# --------------------------------------------------------------------------- table

_ID = r"([A-Za-z0-9][A-Za-z0-9._-]*)"

ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("POST", re.compile(r"/v1/generate/(controlnet)"), lambda c, r, m: handle_generate(c, r, spec.TXT2IMG)),
    ("POST", re.compile(r"/v1/generate/(controlnet-img2img)"), lambda c, r, m: handle_generate(c, r, spec.IMG2IMG)),
    ("POST", re.compile(rf"/v1/generate/custom/{_ID}"), lambda c, r, m: handle_custom(c, r, m.group(1))),
    ("GET", re.compile(r"/v1/jobs"), list_jobs),
    ("GET", re.compile(rf"/v1/jobs/{_ID}"), get_job),
    ("POST", re.compile(rf"/v1/jobs/{_ID}/action"), job_action),
    ("GET", re.compile(rf"/v1/assets/{_ID}"), get_asset),
    ("POST", re.compile(r"/v1/assets"), upload_asset),
    ("GET", re.compile(r"/v1/models"), list_models),
    ("GET", re.compile(rf"/v1/models/{_ID}"), get_model),
    ("GET", re.compile(rf"/v1/teams/{_ID}/limits"), team_limits),
]


def dispatch(ctx: Context, req: Request) -> Response:
    allowed: list[str] = []
    for method, pattern, handler in ROUTES:
        m = pattern.fullmatch(req.path.rstrip("/") or "/")
        if m is None:
            continue
        if method != req.method:
            allowed.append(method)
            continue
        try:
            return handler(ctx, req, m)
        except HttpError as exc:
            return exc.response()
    if allowed:
        return Response.json(405, {"reason": f"Method {req.method} not allowed"}, {"Allow": ", ".join(allowed)})
    return Response.error(404, f"No route for {req.method} {req.path}")
