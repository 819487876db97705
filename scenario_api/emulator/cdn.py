"""The credential-free file route: ``GET /cdn/assets/<id>.png?<signed query>``.

Like Scenario's CDN it needs no Authorization header (it ignores one), checks
the signature and expiry (403), and serves the PNG with its Content-Length.
The ``expired_url``, ``truncated_download`` and ``trickle_download`` faults act here, and only on
requests that would otherwise succeed or be refused for expiry.
"""

from __future__ import annotations

import re

from .context import Context
from .faults import DOWNLOAD_KINDS
from .messages import Request, Response

FILE_RE = re.compile(r"/cdn/assets/(asset_[A-Za-z0-9_-]+)\.png")


def handle_file(ctx: Context, req: Request) -> Response:
    m = FILE_RE.fullmatch(req.path)
    if req.method not in ("GET", "HEAD") or m is None:
        return Response.error(404, "Not found")
    refusal = ctx.signer.check(req.path, req.query)
    if refusal is not None:
        return Response.error(403, refusal)
    fault = ctx.faults.take(DOWNLOAD_KINDS, req.method, req.path, req.query)
    if fault is not None and fault.kind == "expired_url":
        resp = Response.error(403, "Request has expired")
        resp.log_extra["fault"] = fault.kind
        return resp
    asset = ctx.store.get_asset(m.group(1))
    if asset is None:
        return Response.error(404, "Not found")
    resp = Response(200, asset.png(), "image/png", {"Cache-Control": "private, max-age=600"})
    if fault is not None and fault.kind == "trickle_download":
        resp.trickle = float(fault.params.get("delay", 0.5))
        resp.log_extra["fault"] = fault.kind
    elif fault is not None:
        resp.truncate = True
        resp.log_extra["fault"] = fault.kind
    return resp
