"""The request log tests read through ``GET /_emulator/log``.

One entry per request to ``/v1`` or ``/cdn`` (control routes are not logged).
Bodies are summarised: data URLs become ``<data URL N chars sha256:…>`` and
long strings are cut, so the log stays small and never holds image payloads.
The Authorization header's value is never stored; only whether one was sent.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

LONG_STRING = 200
KEEP_CHARS = 80
MAX_ENTRIES = 10_000


def data_url_marker(value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:12]
    return f"<data URL {len(value)} chars sha256:{digest}>"


def summarise(value: Any) -> Any:
    """A log-safe copy of a decoded JSON value."""
    if isinstance(value, dict):
        return {str(k): summarise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [summarise(v) for v in value]
    if isinstance(value, str):
        if value.startswith("data:"):
            return data_url_marker(value)
        if len(value) > LONG_STRING:
            return value[:KEEP_CHARS] + f"…<{len(value)} chars>"
    return value


def summarise_body(raw: bytes) -> Any:
    """Decoded-and-summarised JSON, ``None`` for no body, a size note for non-JSON."""
    if not raw:
        return None
    try:
        return summarise(json.loads(raw))
    except (ValueError, UnicodeDecodeError):
        return f"<{len(raw)} bytes, not JSON>"


class RequestLog:
    """Append-only (bounded) list of entries, safe across handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._seq = 0

    def open(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        *,
        auth_ok: bool | None,
        auth_header_present: bool,
        body: Any,
    ) -> dict[str, Any]:
        """Record a request as it arrives; the handler fills ``status`` when it answers."""
        with self._lock:
            self._seq += 1
            entry = {
                "seq": self._seq,
                "time": round(time.time(), 6),
                "method": method,
                "path": path,
                "query": dict(query),
                "auth_ok": auth_ok,
                "auth_header_present": auth_header_present,
                "status": None,
                "body": body,
            }
            self._entries.append(entry)
            del self._entries[:-MAX_ENTRIES]
            return entry

    def update(self, entry: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            entry.update(fields)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
