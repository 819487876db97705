"""Plain request/response objects between the HTTP plumbing and the routes.

Route functions take a :class:`Request` and return a :class:`Response` (or
raise :class:`HttpError`), so they never touch sockets and stay easy to read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from typing import Any


class HttpError(Exception):
    """Answer ``status`` with ``{"reason": reason, **extra}``."""

    def __init__(self, status: int, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.extra = extra

    def response(self) -> Response:
        return Response.error(self.status, self.reason, **self.extra)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message[str, str]  # as http.server parsed them
    body: bytes
    origin: str
    key: str | None = None  # the authenticated API key, if any

    def json(self) -> Any:
        if not self.body:
            raise HttpError(400, "Request body must be JSON")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, "Request body is not valid JSON") from None

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise HttpError(400, "Request body must be a JSON object")
        return data


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False  # send the full Content-Length but only half the body
    trickle: float = 0.0  # > 0: send the body 256 bytes at a time, this many seconds apart
    log_extra: dict[str, Any] = field(default_factory=dict)  # merged into the request's log entry

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status, body, "application/json", dict(headers or {}))

    @classmethod
    def error(cls, status: int, reason: str, **extra: Any) -> Response:
        return cls.json(status, {"reason": reason, **extra})
