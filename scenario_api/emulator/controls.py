"""Test controls under ``/_emulator`` (no auth, never logged).

``log`` (GET, DELETE), ``faults`` (GET, POST one or a list, DELETE),
``config`` (GET, POST a partial config), ``reset`` (POST), ``state`` (GET:
balance and job count, handy for debugging).
"""

from __future__ import annotations

from .context import Context
from .messages import HttpError, Request, Response


def handle_control(ctx: Context, req: Request) -> Response:
    route = (req.method, req.path.rstrip("/"))
    try:
        if route == ("GET", "/_emulator/log"):
            return Response.json(200, ctx.log.entries())
        if route == ("DELETE", "/_emulator/log"):
            ctx.log.clear()
            return Response.json(200, {"ok": True})
        if route == ("GET", "/_emulator/faults"):
            return Response.json(200, ctx.faults.list())
        if route == ("POST", "/_emulator/faults"):
            return _add_faults(ctx, req)
        if route == ("DELETE", "/_emulator/faults"):
            ctx.faults.clear()
            return Response.json(200, {"ok": True})
        if route == ("GET", "/_emulator/config"):
            return Response.json(200, ctx.config.to_json())
        if route == ("POST", "/_emulator/config"):
            try:
                config = ctx.update_config(req.json_object())
            except ValueError as exc:
                raise HttpError(400, str(exc)) from None
            return Response.json(200, config.to_json())
        if route == ("POST", "/_emulator/reset"):
            ctx.reset()
            return Response.json(200, {"ok": True})
        if route == ("GET", "/_emulator/state"):
            return Response.json(200, {"balance": ctx.store.balance, "jobs": len(ctx.store.list_jobs())})
    except HttpError as exc:
        return exc.response()
    return Response.error(404, f"No control route {req.method} {req.path}")


def _add_faults(ctx: Context, req: Request) -> Response:
    raw = req.json()
    items = raw if isinstance(raw, list) else [raw]
    # "credits" is not a fault but a one-off balance change, accepted here for convenience
    plan = []
    for item in items:
        if isinstance(item, dict) and item.get("kind") == "credits":
            balance = item.get("balance")
            try:
                ctx.update_config({"credits": balance})
            except ValueError as exc:
                raise HttpError(400, f"a 'credits' fault needs a numeric balance ({exc})") from None
        else:
            plan.append(item)
    try:
        added = ctx.faults.add(plan) if plan else []
    except ValueError as exc:
        raise HttpError(400, str(exc)) from None
    return Response.json(200, {"added": [f.to_json() for f in added], "faults": ctx.faults.list()})
