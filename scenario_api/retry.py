"""When to try again, and how long to wait first.

Two kinds of calls need different rules (see ARCHITECTURE.md):

* **Reads** (GET jobs/assets/models, the dry-run quote, downloads) change
  nothing on the server, so any transient failure may be retried: 429, 5xx,
  connection failures, timeouts and dropped connections.
* **Paid calls** (``POST /generate/*`` and ``POST /assets``) may only be
  repeated when the request provably never reached Scenario (connect
  failures) or Scenario explicitly refused it (429 / 503). Everything else is
  *ambiguous* (:func:`is_ambiguous_failure`, 500/502/504): a submit is then
  reconciled against the job list instead of resent, an upload reported as
  of unknown outcome.

:class:`RetryPolicy` is a small value object so tests (and impatient callers)
can use tiny delays: ``RetryPolicy.fast()``.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "RetryPolicy",
    "RETRYABLE_READ_STATUSES",
    "REFUSED_PAID_STATUSES",
    "parse_retry_after",
    "server_wait_hint",
    "is_connect_failure",
    "is_ambiguous_failure",
]

# Statuses after which a read is simply tried again.
RETRYABLE_READ_STATUSES = frozenset({429, 500, 502, 503, 504})
# Statuses that prove a paid request was refused (no job created), so it may be resent.
REFUSED_PAID_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _remaining_seconds(body: Any) -> float | None:
    """Scenario's own cooldown hint: ``remainingSeconds`` at top level or under ``details``."""
    if not isinstance(body, Mapping):
        return None
    for holder in (body, body.get("details")):
        if isinstance(holder, Mapping):
            value = holder.get("remainingSeconds")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return max(0.0, float(value))
    return None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        return None


def server_wait_hint(response: httpx.Response | None) -> float | None:
    """What the server asked us to wait: ``Retry-After``, else body ``remainingSeconds``."""
    if response is None:
        return None
    hinted = parse_retry_after(response.headers.get("retry-after"))
    if hinted is None:
        hinted = _remaining_seconds(_json_or_none(response))
    return hinted


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter, honouring server hints.

    ``max_attempts`` counts every try, the first included. ``base`` and ``cap``
    shape the backoff (``uniform(0, min(cap, base * 2**(attempt-1)))``);
    ``max_wait`` caps a server-requested wait (``Retry-After`` /
    ``remainingSeconds``) so a misbehaving server cannot park us for hours.
    ``rng`` is the jitter source (tests pass ``lambda: 1.0`` for determinism).
    """

    max_attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_wait: float = 60.0
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base < 0 or self.cap < 0 or self.max_wait < 0:
            raise ValueError("delays must not be negative")

    @classmethod
    def fast(cls, max_attempts: int = 4) -> RetryPolicy:
        """Tiny delays for tests and local emulators (server hints are still honoured)."""
        return cls(max_attempts=max_attempts, base=0.01, cap=0.05)

    def backoff(self, attempt: int) -> float:
        """Full-jitter backoff after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        return max(0.0, min(1.0, self.rng())) * ceiling

    def delay_for(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before the next try, after failed attempt ``attempt``.

        A server hint wins over the computed backoff, capped at ``max_wait``.
        """
        hinted = server_wait_hint(response)
        if hinted is not None:
            return min(hinted, self.max_wait)
        return self.backoff(attempt)

    def should_retry(self, attempt: int) -> bool:
        """True while another attempt is allowed after ``attempt`` tries."""
        return attempt < self.max_attempts


def is_connect_failure(exc: BaseException) -> bool:
    """The request provably never reached the server (safe to resend even when paid)."""
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def is_ambiguous_failure(exc: BaseException) -> bool:
    """The request may have reached the server and been acted on: never resend a paid call."""
    return isinstance(exc, httpx.TransportError) and not is_connect_failure(exc)
