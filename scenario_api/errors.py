"""One exception hierarchy for everything the client can raise.

Every error carries what the user needs to act: Scenario's ``reason`` and
``hint`` when the server gave them, the HTTP status, and the job id when there
is one. No message, repr or attribute ever holds a credential.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ScenarioError",
    "ConfigurationError",
    "ValidationError",
    "APIError",
    "BadRequestError",
    "AuthenticationError",
    "ForbiddenError",
    "NotFoundError",
    "InsufficientCreditsError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "ScenarioTimeoutError",
    "JobError",
    "JobFailedError",
    "JobCanceledError",
    "OutcomeUnknownError",
    "DownloadError",
    "ImageDecodeError",
    "BudgetExceededError",
    "DownloadRefusedError",
    "ExpiredURLError",
    "TruncatedDownloadError",
    "TransientDownloadError",
    "AmbiguousOutcome",
    "error_for_status",
    "register_param_names",
]

_MAX_SHOWN = 80

# Wire field name -> Python / widget parameter name, for error messages. ``spec`` fills it when it is
# imported (``register_param_names``), so this module imports nothing from the package (no cycle).
_PARAM_NAMES: dict[str, str] = {}


def register_param_names(mapping: dict[str, str]) -> None:
    """Teach :class:`ValidationError` the parameter name of each wire field (called by ``spec``)."""
    _PARAM_NAMES.update(mapping)


def _show(value: Any) -> str:
    """A short, safe rendering of a user value for an error message."""
    if value is None:
        return "nothing"
    text = repr(value)
    if isinstance(value, str) and value.startswith("data:"):
        return f"a data URL of {len(value)} characters"
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 1] + "…"
    return text


class ScenarioError(Exception):
    """Base class. ``str(err)`` is a complete, user-facing sentence."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        hint: str | None = None,
        job_id: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.reason = reason
        self.hint = hint
        self.job_id = job_id
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.reason and self.reason not in self.message:
            parts.append(f"Scenario says: {self.reason}")
        if self.hint and self.hint not in self.message:
            parts.append(f"Hint: {self.hint}")
        if self.job_id and self.job_id not in self.message:
            parts.append(f"Job id: {self.job_id}")
        return " ".join(p if p.endswith((".", "!", "?")) else p + "." for p in parts)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}={getattr(self, k)!r}" for k in ("status", "job_id") if getattr(self, k, None) is not None
        )
        return f"{type(self).__name__}({self.message!r}{', ' + fields if fields else ''})"


class ConfigurationError(ScenarioError):
    """Missing or malformed configuration (credentials, base URL)."""


class ValidationError(ScenarioError, ValueError):
    """A request was rejected before anything was sent (or by the server's same rules).

    ``field`` is the wire name, ``param`` the Python / widget name, ``allowed``
    a phrase describing the accepted values.
    """

    def __init__(self, field: str, value: Any, allowed: str, *, param: str | None = None) -> None:
        self.field = field
        self.param = param or _PARAM_NAMES.get(field, field)
        self.value = value
        self.allowed = allowed
        name = field if self.param == field else f"{field} ({self.param})"
        super().__init__(f"Invalid {name}: got {_show(value)}; allowed: {allowed}")


class APIError(ScenarioError):
    """Scenario answered with an error status."""


class BadRequestError(APIError):
    """HTTP 400: Scenario rejected the request."""


class AuthenticationError(APIError):
    """HTTP 401: the API key or secret is wrong or missing."""


class ForbiddenError(APIError):
    """HTTP 403: the key lacks the scope, project or plan for this call."""


class NotFoundError(APIError):
    """HTTP 404: unknown model, job or asset."""


class InsufficientCreditsError(APIError):
    """Not enough Scenario creative units for this request."""


class RateLimitedError(APIError):
    """HTTP 429: a concurrency ceiling or cooldown; ``retry_after`` in seconds if known."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ServerError(APIError):
    """HTTP 5xx."""


class TransportError(ScenarioError):
    """The network failed (connection refused, reset, TLS, …)."""


class ScenarioTimeoutError(TransportError):
    """A request, a wait or a download took longer than allowed."""


class JobError(ScenarioError):
    """A job ended without results."""


class JobFailedError(JobError):
    """The job's status is ``failure``."""


class JobCanceledError(JobError):
    """The job's status is ``canceled``: someone canceled it on Scenario's side.

    A caller that wants to stop cancels its own task instead; the client then
    cancels the remote job and lets the ``asyncio.CancelledError`` go on.
    """


class OutcomeUnknownError(ScenarioError):
    """A paid request may or may not have been accepted, and no job could be found.

    The client never resubmits in this case: the user must check their recent
    jobs first (``since`` is the ISO time the request was sent).
    """

    def __init__(self, message: str, *, since: str | None = None, **kw: Any) -> None:
        self.since = since
        super().__init__(message, **kw)


class DownloadError(ScenarioError):
    """An asset could not be downloaded (host not allowed, too large, truncated, expired)."""


class DownloadRefusedError(DownloadError):
    """Not fetched, and retrying will not help: host/scheme not allowed, file too large."""


class ExpiredURLError(DownloadError):
    """The file host refused the signed URL (expired or revoked): get a fresh one."""


class TruncatedDownloadError(DownloadError):
    """Fewer bytes than announced, or the connection dropped mid-body."""


class TransientDownloadError(DownloadError):
    """A network failure or 429/5xx from the file host: worth another try."""


class ImageDecodeError(ScenarioError, ValueError):
    """Bytes that are not a decodable image."""


class BudgetExceededError(ScenarioError):
    """The price quote is above the caller's creative-unit budget; nothing was submitted."""

    def __init__(self, message: str, *, cost: float, budget: float, **kw: Any) -> None:
        self.cost = cost
        self.budget = budget
        super().__init__(message, **kw)


class AmbiguousOutcome(Exception):
    """Internal to the client: a paid request may or may not have been processed (never resend it).

    Not a :class:`ScenarioError`: the client always turns it into a job lookup
    (submit) or an :class:`OutcomeUnknownError` (upload) before it reaches a caller.
    """

    def __init__(self, cause: str, *, status: int | None = None) -> None:
        self.cause = cause
        self.status = status
        super().__init__(cause)


_CREDIT_WORDS = ("credit", "creative unit", "insufficient", "not enough")


def error_for_status(
    status: int,
    body: Any,
    *,
    what: str,
    job_id: str | None = None,
    retry_after: float | None = None,
) -> APIError:
    """Build the right :class:`APIError` for an HTTP error answer.

    ``body`` is the decoded JSON (or text). Scenario sends ``{"reason": …}``;
    ``message``, ``error`` and ``detail`` are read too.
    """
    reason = hint = None
    if isinstance(body, dict):
        for key in ("reason", "message", "error", "detail"):
            val = body.get(key)
            if isinstance(val, str) and val:
                reason = val
                break
        h = body.get("hint")
        hint = h if isinstance(h, str) else None
    elif isinstance(body, str) and body.strip():
        reason = body.strip()[:300]
    kw: dict[str, Any] = {"status": status, "reason": reason, "hint": hint, "job_id": job_id}
    low = (reason or "").lower()
    if status == 402 or (status in (400, 403) and any(w in low for w in _CREDIT_WORDS)):
        return InsufficientCreditsError(
            f"Scenario: not enough creative units for {what} (HTTP {status}). Top up the Scenario team's credits",
            **kw,
        )
    if status == 400:
        return BadRequestError(f"Scenario rejected {what} (HTTP 400)", **kw)
    if status == 401:
        return AuthenticationError(
            f"Scenario refused the API key for {what} (HTTP 401). Check SCENARIO_API_KEY and SCENARIO_API_SECRET",
            **kw,
        )
    if status == 403:
        return ForbiddenError(f"Scenario forbade {what} (HTTP 403): check the key's project and scopes", **kw)
    if status == 404:
        return NotFoundError(f"Scenario found nothing for {what} (HTTP 404)", **kw)
    if status == 429:
        return RateLimitedError(f"Scenario is throttling {what} (HTTP 429)", retry_after=retry_after, **kw)
    if status >= 500:
        return ServerError(f"Scenario had a server error on {what} (HTTP {status})", **kw)
    return APIError(f"Scenario answered HTTP {status} to {what}", **kw)
