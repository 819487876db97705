"""The process-wide cache of model records."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class RecordCache:
    """Process-wide model records with a time-to-live, keyed by (account scope, model id).

    Thread-safe and loop-free (a plain lock, no asyncio objects), so it can
    live in a module global across ComfyUI prompts, each of which runs its own
    event loop. The scope keeps one account's private models from another's.
    """

    def __init__(self, ttl: float = 600.0, max_entries: int = 512, clock: Callable[[], float] | None = None) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._data: dict[tuple[str, str], tuple[float, Any]] = {}

    def get(self, scope: str, model_id: str) -> Any | None:
        with self._lock:
            hit = self._data.get((scope, model_id))
            if hit is None:
                return None
            if self._clock() - hit[0] > self.ttl:
                self._data.pop((scope, model_id), None)
                return None
            return hit[1]

    def put(self, scope: str, model_id: str, value: Any) -> None:
        with self._lock:
            if len(self._data) >= self.max_entries:
                oldest = min(self._data, key=lambda k: self._data[k][0])
                self._data.pop(oldest, None)
            self._data[(scope, model_id)] = (self._clock(), value)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
