"""The fault plan: scripted misbehaviour for the next N matching requests.

A fault targets ``"METHOD PATH"`` with a shell pattern (``fnmatch``, case
sensitive, path without the query), optionally narrowed by ``query`` (each key's
value is a pattern, or null meaning "key absent": ``{"dryRun": null}`` hits only
paid submits). Each use decrements ``count``; a spent fault disappears. With
``probability`` p < 1 each matching request uses the fault only with chance p
(soak tests: a large ``count`` and a small ``probability``).

Transport kinds act in the HTTP handler (answer a status, drop the connection,
be slow); job kinds shape the next jobs a matching submit creates; download
kinds act on the file route.
"""

from __future__ import annotations

import fnmatch
import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TRANSPORT_KINDS = (
    "status",
    "disconnect_before_accept",
    "disconnect_after_accept",
    "slow",
    "status_after_accept",
    "broken_body",
)
# Faults that let the request be processed (a job created, credits charged) and then spoil the answer.
AFTER_ACCEPT_KINDS = ("disconnect_after_accept", "status_after_accept", "broken_body")
BROKEN_BODY_MODES = ("malformed_json", "html", "empty", "not_object", "no_job_id", "bad_job_id", "no_job")
JOB_KINDS = ("job_failure", "stuck_job")
DOWNLOAD_KINDS = ("expired_url", "truncated_download", "trickle_download")
KINDS = TRANSPORT_KINDS + JOB_KINDS + DOWNLOAD_KINDS

_ALLOWED_PARAMS = {
    "status": {"status", "retry_after", "body"},
    "disconnect_before_accept": set(),
    "disconnect_after_accept": set(),
    "slow": {"delay", "process_first"},
    "status_after_accept": {"status", "retry_after", "body", "raw", "content_type"},
    "broken_body": {"mode", "status"},
    "job_failure": {"error", "hint"},
    "stuck_job": set(),
    "expired_url": set(),
    "truncated_download": set(),
    "trickle_download": {"delay"},
}
_COMMON = {"target", "kind", "count", "query", "probability"}


@dataclass
class Fault:
    id: int
    kind: str
    target: str
    count: int
    query: dict[str, str | None] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    probability: float = 1.0  # chance that a matching request uses the fault (soak tests)

    def matches(self, method: str, path: str, query: Mapping[str, str]) -> bool:
        if not fnmatch.fnmatchcase(f"{method} {path}", self.target):
            return False
        for key, pattern in self.query.items():
            if pattern is None:
                if key in query:
                    return False
            elif key not in query or not fnmatch.fnmatchcase(query[key], pattern):
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "count": self.count,
            "query": dict(self.query),
            **({"probability": self.probability} if self.probability < 1.0 else {}),
            **self.params,
        }


def _number(value: Any, name: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise ValueError(f"fault field {name!r} must be a number >= {minimum:g}")
    return float(value)


def parse_fault(raw: Any, fault_id: int) -> Fault:
    """Check one fault object from ``POST /_emulator/faults``; ValueError names the problem."""
    if not isinstance(raw, Mapping):
        raise ValueError("a fault must be a JSON object")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ValueError(f"fault kind must be one of: {', '.join(KINDS)} (got {kind!r})")
    unknown = set(raw) - _COMMON - _ALLOWED_PARAMS[kind]
    if unknown:
        raise ValueError(f"unknown field(s) for a {kind!r} fault: {', '.join(sorted(unknown))}")
    target = raw.get("target")
    if not isinstance(target, str) or " " not in target:
        raise ValueError("fault target must be 'METHOD PATH-PATTERN', e.g. 'POST /v1/generate/*'")
    count = raw.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError("fault count must be an integer >= 1")
    query = raw.get("query") or {}
    if not isinstance(query, Mapping) or not all(v is None or isinstance(v, str) for v in query.values()):
        raise ValueError("fault query must map parameter names to patterns (strings) or null")
    probability = raw.get("probability", 1.0)
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 < probability <= 1:
        raise ValueError("fault probability must be a number in (0, 1]")
    params = {k: raw[k] for k in _ALLOWED_PARAMS[kind] if k in raw}
    if kind in ("status", "status_after_accept"):
        status = params.get("status")
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError("a 'status' fault needs an HTTP status, e.g. {\"status\": 429}")
        if "retry_after" in params:
            _number(params["retry_after"], "retry_after")
        if "body" in params and not isinstance(params["body"], (dict, list, str)):
            raise ValueError("fault body must be a JSON object, list or string")
    if kind == "status_after_accept":
        if "body" in params and "raw" in params:
            raise ValueError("a 'status_after_accept' fault takes 'body' (JSON) or 'raw' (text), not both")
        for text in ("raw", "content_type"):
            if text in params and not isinstance(params[text], str):
                raise ValueError(f"fault field {text!r} must be a string")
    if kind == "broken_body":
        if params.get("mode") not in BROKEN_BODY_MODES:
            raise ValueError(f"a 'broken_body' fault needs a mode, one of: {', '.join(BROKEN_BODY_MODES)}")
        if "status" in params:
            status = params["status"]
            if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 299:
                raise ValueError("a 'broken_body' fault's status must be a 2xx status")
    if kind == "trickle_download":
        _number(params.get("delay", 0.5), "delay")
    if kind == "slow":
        _number(params.get("delay"), "delay")
        if not isinstance(params.get("process_first", True), bool):
            raise ValueError("fault field 'process_first' must be true or false")
    for text in ("error", "hint"):
        if text in params and not isinstance(params[text], str):
            raise ValueError(f"fault field {text!r} must be a string")
    return Fault(fault_id, kind, target, count, dict(query), params, float(probability))


class FaultPlan:
    """Thread-safe list of pending faults, consumed first-added first."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1
        self._random = random.Random(seed)

    def add(self, raw: Any) -> list[Fault]:
        """Add one fault object or a list of them (all-or-nothing)."""
        items = raw if isinstance(raw, list) else [raw]
        with self._lock:
            parsed = [parse_fault(item, self._next_id + i) for i, item in enumerate(items)]
            self._next_id += len(parsed)
            self._faults.extend(parsed)
        return parsed

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def take(self, kinds: tuple[str, ...], method: str, path: str, query: Mapping[str, str]) -> Fault | None:
        """Consume one use of the first pending fault of ``kinds`` matching the request."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.matches(method, path, query):
                    if fault.probability < 1.0 and self._random.random() >= fault.probability:
                        continue  # this request is spared; the fault stays for the next ones
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def give_back(self, fault: Fault) -> None:
        """Undo one :meth:`take` of ``fault`` (its request was refused before it could act, e.g. a 429)."""
        with self._lock:
            fault.count += 1
            if fault not in self._faults:
                self._faults.insert(0, fault)
