"""The authenticated HTTP layer between :class:`ScenarioClient` and Scenario.

Why a separate module: everything that touches credentials, the connection
pool and the retry rules lives here, so the operations in ``client.py`` read
as plain protocol steps and the downloader (``downloads.py``) can be shown to
share none of it.

* One ``httpx.AsyncClient`` per :class:`Transport`, created lazily inside the
  running event loop and bound to it (:class:`LoopBoundClient`). ComfyUI runs
  every prompt in a fresh ``asyncio.run``, so a pool cached across loops would
  fail in confusing ways; we fail early with a clear ``RuntimeError``.
* The ``Authorization`` header is attached per request, and only requests to
  the configured API base URL are ever built here.
* Log lines go through :func:`redact`: no header values, no secrets, no data
  URLs (their length and a sha256 prefix instead).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import math
import re
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpx

from .config import Settings
from .errors import AmbiguousOutcome, APIError, ScenarioTimeoutError, TransportError, error_for_status
from .retry import (
    REFUSED_PAID_STATUSES,
    RETRYABLE_READ_STATUSES,
    RetryPolicy,
    is_ambiguous_failure,
    is_connect_failure,
    server_wait_hint,
)
from .version import __version__

__all__ = [
    "BodyPieces",
    "LOG",
    "USER_AGENT",
    "DEFAULT_TIMEOUT",
    "redact",
    "install_log_redaction",
    "describe_blob",
    "decode_body",
    "api_error",
    "read_pages",
    "LoopBoundClient",
    "Transport",
    "WireState",
    "server_clock_offset",
    "Redacted",
    "shared_ssl_context",
]

LOG = logging.getLogger("scenario_api")
USER_AGENT = f"scenario-comfyui/{__version__}"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

# --------------------------------------------------------------------------- redaction

_SENSITIVE_KEYS = re.compile(r"authorization|secret|password|token|api[-_]?key|signature|policy", re.I)
_BASE64_RUN = re.compile(r"^[A-Za-z0-9+/=\s]{200,}$")
_MAX_LOGGED_STRING = 200


def describe_blob(data: str | bytes) -> str:
    """``<N chars sha256:abcdef123456>``: identifies a blob in logs without revealing it."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    unit = "chars" if isinstance(data, str) else "bytes"
    return f"<{len(data)} {unit} sha256:{hashlib.sha256(raw).hexdigest()[:12]}>"


class BodyPieces:
    """A request body already encoded, kept as the pieces it was built from (never joined into one copy).

    Joining megabytes (and handing one huge buffer to the socket) is work on
    the event loop and holds the GIL: sent piece by piece, the loop copies
    one piece at a time. Re-iterable, so a request can be sent again; its
    ``Content-Length`` is known (no chunked encoding).
    """

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.pieces = tuple(pieces)
        self.size = sum(len(p) for p in self.pieces)

    def __len__(self) -> int:
        return self.size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


class Redacted:
    """``redact(value)`` computed only when a log line is actually written (``str()``), never before.

    Hashing a multi-megabyte data URL for a log line nobody reads costs the
    event loop tens of milliseconds: pass ``Redacted(value)`` as a logging
    argument instead of ``redact(value)``.
    """

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def __str__(self) -> str:
        return str(redact(self._value))

    __repr__ = __str__


def redact(value: Any, *, key: str | None = None) -> Any:
    """A copy of ``value`` safe to log.

    Data URLs and long base64 runs become :func:`describe_blob` summaries;
    values under credential-like keys become ``***``; other long strings are
    truncated. Works on nested dicts/lists; other types pass through.
    """
    if key is not None and _SENSITIVE_KEYS.search(key) and key != "paginationToken":
        return "***"
    if isinstance(value, Mapping):
        return {k: redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, bytes):
        return describe_blob(value)
    if isinstance(value, str):
        if value.startswith("data:") or _BASE64_RUN.match(value):
            return "data URL " + describe_blob(value) if value.startswith("data:") else describe_blob(value)
        if len(value) > _MAX_LOGGED_STRING:
            return value[:_MAX_LOGGED_STRING] + "…"
    return value


class SignedQueryFilter(logging.Filter):
    """Strip query strings from URLs that httpx/httpcore put in their own log records.

    httpx logs every request at INFO ("HTTP Request: GET <url> ..."), and a
    host such as ComfyUI logs at INFO: a signed CDN URL's query is a bearer
    credential for that asset, so it must not reach the log. The record keeps
    scheme, host and path.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_strip_query(a) for a in record.args)
        return True


def _strip_query(value: Any) -> Any:
    if isinstance(value, httpx.URL):
        return value.copy_with(query=None, fragment=None) if value.query else value
    if isinstance(value, str) and "://" in value and "?" in value:
        return value.split("?", 1)[0] + "?<redacted>"
    return value


_QUERY_FILTER = SignedQueryFilter()


def install_log_redaction() -> None:
    """Attach :class:`SignedQueryFilter` to the httpx loggers (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _QUERY_FILTER not in logger.filters:
            logger.addFilter(_QUERY_FILTER)


# --------------------------------------------------------------------------- responses


def decode_body(response: httpx.Response) -> Any:
    """Decoded JSON, else the text (possibly empty). Never raises."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        try:
            return response.text
        except (UnicodeDecodeError, httpx.ResponseNotRead):
            return ""


def api_error(response: httpx.Response, *, what: str, job_id: str | None = None) -> APIError:
    """The typed error for an HTTP error answer (reason, hint, retry-after carried over)."""
    return error_for_status(
        response.status_code,
        decode_body(response),
        what=what,
        job_id=job_id,
        retry_after=server_wait_hint(response),
    )


def transport_error(exc: BaseException, *, what: str, attempts: int) -> TransportError:
    """Wrap an httpx network failure without leaking URLs or headers."""
    tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
    kind = type(exc).__name__
    detail = str(exc).strip() or kind
    if isinstance(exc, httpx.TimeoutException):
        return ScenarioTimeoutError(f"Scenario did not answer in time for {what}{tries} ({kind})")
    if is_connect_failure(exc):
        return TransportError(f"Could not connect to Scenario for {what}{tries}: {detail}. Nothing was sent")
    return TransportError(f"The connection to Scenario failed during {what}{tries}: {kind}: {detail}")


# --------------------------------------------------------------------------- loop-bound pool


class LoopBoundClient:
    """An ``httpx.AsyncClient`` created on first use and tied to that event loop.

    Using it from another running loop raises ``RuntimeError`` instead of
    failing deep inside the connection pool.
    """

    def __init__(self, factory: Callable[[], httpx.AsyncClient], *, owner: str) -> None:
        self._factory = factory
        self._owner = owner
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def is_open(self) -> bool:
        return self._client is not None

    def get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None:
            self._client = self._factory()
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                f"This {self._owner} was opened in a different event loop. Its connection pool belongs to that "
                "loop; create one ScenarioClient per event loop (e.g. one per ComfyUI prompt, inside "
                "'async with ScenarioClient(...)')."
            )
        return self._client

    async def aclose(self) -> None:
        client, loop = self._client, self._loop
        self._client = self._loop = None
        if client is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - aclose is async, a loop always runs
            running = None
        if running is loop:
            await client.aclose()
        else:
            LOG.warning("%s closed from another event loop; its connections are dropped unclosed", self._owner)


# --------------------------------------------------------------------------- transport


class WireState:
    """Whether a paid request may have reached Scenario, and when it was last sent.

    :meth:`Transport.paid` sets ``maybe_sent`` just before every send and clears
    it again when the outcome proves nothing was created (a connect failure or
    a 429/503 refusal that will be retried). A caller cancelled while it is
    True must look for the job instead of assuming nothing happened.
    ``last_send`` is the wall-clock time (``time.time()``) of the latest send:
    earlier attempts were refused, so only this one can have created a job.
    """

    __slots__ = ("maybe_sent", "last_send", "first_send", "answered")

    def __init__(self) -> None:
        self.maybe_sent = False
        self.last_send: float | None = None
        self.first_send: float | None = None  # when the first attempt left: a job may date from then
        self.answered = False  # some attempt reached the server (a 429/503 may come after acceptance)


def server_clock_offset(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds the server's clock is ahead of ours, from the response's ``Date`` header.

    ``Date`` has whole-second resolution (it is truncated), so the estimate errs
    by up to a second on the early side; callers that build a time window from
    it widen the window by a skew. None when the header is missing or unusable.
    """
    text = response.headers.get("date")
    if not text:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    offset = when.timestamp() - (time.time() if now is None else now)
    return offset if math.isfinite(offset) else None


_SSL_LOCK = threading.Lock()
_SSL_CONTEXT: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context (the CA bundle loaded once) for every connection pool of the process.

    Loading the CA bundle takes tens of milliseconds; a pool opened per
    prompt would otherwise spend them on the event loop each time. An
    ``SSLContext`` holds no loop state and is safe to share between threads.
    """
    global _SSL_CONTEXT
    with _SSL_LOCK:
        if _SSL_CONTEXT is None:
            _SSL_CONTEXT = httpx.create_ssl_context()
        return _SSL_CONTEXT


class Transport:
    """Authenticated requests to the Scenario API, with read and paid retry rules.

    ``clock_offset`` is the server clock minus ours (seconds), from the ``Date``
    header of the latest response that had one (0.0 until then). The submit
    reconciliation uses it to ask for jobs created since the send in the
    server's own time.
    """

    def __init__(self, settings: Settings, *, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT) -> None:
        self._settings = settings
        self._credentials = settings.require_credentials()
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=10.0)
        self._pool = LoopBoundClient(self._make_client, owner="ScenarioClient")
        self.clock_offset = 0.0

    def __repr__(self) -> str:
        return f"Transport(base_url={self._settings.base_url!r}, credentials={self._credentials!r})"

    def _make_client(self) -> httpx.AsyncClient:
        install_log_redaction()
        return httpx.AsyncClient(
            verify=shared_ssl_context(),
            base_url=self._settings.base_url + "/",
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=self._timeout,
            follow_redirects=False,  # never carry the Authorization header anywhere else
        )

    def bind(self) -> None:
        """Create (or check) the pool in the running loop; raises RuntimeError on a foreign loop."""
        self._pool.get()

    async def aclose(self) -> None:
        await self._pool.aclose()

    # ------------------------------------------------------------------ one request

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        timeout: httpx.Timeout | float | None = None,
        content: bytes | BodyPieces | None = None,
    ) -> httpx.Response:
        """One request, no retries. ``path`` is relative to the base URL (``/jobs/…``).

        ``content`` is a JSON body already encoded (big uploads encode theirs in a worker thread), as bytes or
        :class:`BodyPieces`.
        """
        if not path.startswith("/") or "://" in path or path.startswith("//"):
            raise ValueError(f"API paths must be relative to the base URL, got {path!r}")  # auth stays on the API
        client = self._pool.get()
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if self._settings.project_id:
            query.setdefault("projectId", self._settings.project_id)
        headers = {"Authorization": self._credentials.authorization_header()}
        kwargs: dict[str, Any] = {"params": query or None, "headers": headers}
        if json is not None:
            kwargs["json"] = json
        elif content is not None:
            kwargs["content"] = content
            headers["Content-Type"] = "application/json"
            if isinstance(content, BodyPieces):
                headers["Content-Length"] = str(content.size)
        if timeout is not None:
            kwargs["timeout"] = timeout
        started = time.monotonic()
        if json is not None and LOG.isEnabledFor(logging.DEBUG):
            LOG.debug("%s %s body=%s", method, path, redact(json))
        try:
            response = await client.request(method, path.lstrip("/"), **kwargs)
        except httpx.TransportError as exc:
            LOG.info("%s %s failed after %.0f ms: %s", method, path, _ms(started), type(exc).__name__)
            raise
        LOG.info("%s %s -> %s (%.0f ms)", method, path, response.status_code, _ms(started))
        offset = server_clock_offset(response)
        if offset is not None:
            self.clock_offset = offset
        return response

    # ------------------------------------------------------------------ retry loop

    async def _with_retries(
        self,
        method: str,
        path: str,
        *,
        what: str,
        policy: RetryPolicy,
        retry_reason: Callable[[httpx.Response | httpx.TransportError], str | None],
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        timeout: httpx.Timeout | float | None = None,
        on_wait: Callable[[float, str], Awaitable[None] | None] | None = None,
        wire: WireState | None = None,
        before_resend: Callable[[], Awaitable[None]] | None = None,
        before_retry: Callable[[httpx.Response], Awaitable[bool]] | None = None,
        content: bytes | BodyPieces | None = None,
    ) -> httpx.Response:
        """Send until ``retry_reason`` has no reason to try again, or ``policy`` runs out.

        The loop is shared by reads and paid calls; only ``retry_reason``
        differs. It gets each outcome (a response or the httpx network error)
        and returns a short reason to wait and resend (also told to
        ``on_wait``), or None to stop; it may raise to end the loop itself.
        Cancelling the caller's task ends the loop at once (a wait, or the send
        in progress). When the loop stops on a network error
        it raises :class:`TransportError`; a response is returned as is.
        ``wire`` (paid calls) tracks whether the request may have landed;
        ``before_resend()`` (paid calls) runs before every resend once an
        attempt reached the server, and may raise to stop the loop.
        ``before_retry(response)`` runs before resending after a refusal; when
        it returns True it has waited itself (e.g. for a free parallel-job
        slot) and the computed pause is skipped.
        """
        attempt = 0
        while True:
            attempt += 1
            outcome: httpx.Response | httpx.TransportError
            if wire is not None:
                if attempt > 1 and wire.answered and before_resend is not None:
                    await before_resend()
                wire.maybe_sent, wire.last_send = True, time.time()
                if wire.first_send is None:
                    wire.first_send = wire.last_send
            try:
                outcome = await self.send(method, path, params=params, json=json, timeout=timeout, content=content)
            except httpx.TransportError as exc:
                outcome = exc
            if wire is not None and isinstance(outcome, httpx.Response):
                wire.answered = True
            why = retry_reason(outcome)
            if why is not None and wire is not None:
                wire.maybe_sent = False  # refused or never connected: nothing was created
            if why is not None and policy.should_retry(attempt):
                response = outcome if isinstance(outcome, httpx.Response) else None
                if before_retry is not None and response is not None and await before_retry(response):
                    continue
                delay = policy.delay_for(attempt, response)
                await _notify(on_wait, delay, why)
                await self._pause(delay, what, attempt)
                continue
            if isinstance(outcome, httpx.TransportError):
                raise transport_error(outcome, what=what, attempts=attempt) from None
            return outcome

    # ------------------------------------------------------------------ reads

    async def read(
        self,
        method: str,
        path: str,
        *,
        what: str,
        policy: RetryPolicy,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        job_id: str | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> httpx.Response:
        """A request that is safe to repeat: retried on 429/5xx and network failures.

        Returns the first non-retryable response with a 2xx status; raises the
        matching :class:`APIError` for an error status, or a :class:`TransportError`
        when the network keeps failing.
        """
        response = await self._with_retries(
            method,
            path,
            what=what,
            policy=policy,
            retry_reason=_read_retry_reason,
            params=params,
            json=json,
            timeout=timeout,
        )
        if response.status_code >= 300:
            raise api_error(response, what=what, job_id=job_id)
        return response

    # ------------------------------------------------------------------ paid

    async def paid(
        self,
        method: str,
        path: str,
        *,
        what: str,
        policy: RetryPolicy,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: httpx.Timeout | float | None = None,
        on_wait: Callable[[float, str], Awaitable[None] | None] | None = None,
        wire: WireState | None = None,
        before_resend: Callable[[], Awaitable[None]] | None = None,
        before_retry: Callable[[httpx.Response], Awaitable[bool]] | None = None,
        content: bytes | BodyPieces | None = None,
    ) -> httpx.Response:
        """A request that spends credits or creates something: resent only when it provably created nothing.

        * connect failures (nothing reached the server) -> retried with backoff;
        * 429 / 503 (the server refused) -> wait as told, then resent;
        * timeouts after sending, dropped connections, 500/502/504 ->
          :class:`AmbiguousOutcome` (the caller reconciles; never resent here);
        * any other answer is returned as is (the caller maps error statuses).

        Pass a :class:`WireState` to learn, when the caller's task is cancelled
        mid-call, whether the request may have reached Scenario. A gateway may
        answer 429/503 *after* Scenario accepted: ``before_resend()`` runs
        before every resend that follows an answer from the server, so the
        caller can check that no job was created since the first send (and
        raise to stop, e.g. to adopt the job it found).
        """
        response = await self._with_retries(
            method,
            path,
            what=what,
            policy=policy,
            retry_reason=_paid_retry_reason,
            params=params,
            json=json,
            timeout=timeout,
            on_wait=on_wait,
            wire=wire,
            before_resend=before_resend,
            before_retry=before_retry,
            content=content,
        )
        status = response.status_code
        if status in REFUSED_PAID_STATUSES:  # still refused when the attempts ran out
            raise api_error(response, what=what)
        if status >= 500:
            raise AmbiguousOutcome(f"HTTP {status} answer", status=status)
        return response

    async def _pause(self, delay: float, what: str, attempt: int) -> None:
        LOG.info("retrying %s in %.2f s (attempt %d failed)", what, delay, attempt)
        await asyncio.sleep(delay)


async def read_pages(
    transport: Transport,
    path: str,
    key: str,
    params: Mapping[str, Any],
    *,
    max_pages: int,
    what: str,
    policy: RetryPolicy,
) -> list[Mapping[str, Any]]:
    """The ``key`` rows of a paginated list (``GET path``), following ``nextPaginationToken`` up to ``max_pages``.

    Short or empty pages are fine; a token seen before ends the walk.
    """
    rows: list[Mapping[str, Any]] = []
    token: str | None = None
    seen_tokens: set[str] = set()
    for _ in range(max(1, max_pages)):
        query = dict(params)
        if token:
            query["paginationToken"] = token
        response = await transport.read("GET", path, what=what, policy=policy, params=query)
        data = decode_body(response)
        page = data.get(key) if isinstance(data, Mapping) else None
        rows.extend(r for r in (page or []) if isinstance(r, Mapping))
        token = data.get("nextPaginationToken") if isinstance(data, Mapping) else None
        if not isinstance(token, str) or not token or token in seen_tokens:
            break
        seen_tokens.add(token)
    return rows


def _read_retry_reason(outcome: httpx.Response | httpx.TransportError) -> str | None:
    """Reads change nothing on the server: any network failure, 429 or 5xx is worth another try."""
    if isinstance(outcome, httpx.TransportError):
        return "network failure"
    if outcome.status_code in RETRYABLE_READ_STATUSES:
        return f"HTTP {outcome.status_code}"
    return None


def _paid_retry_reason(outcome: httpx.Response | httpx.TransportError) -> str | None:
    """Paid calls: resend only what provably created nothing; anything ambiguous ends the loop."""
    if isinstance(outcome, httpx.TransportError):
        if is_ambiguous_failure(outcome):
            raise AmbiguousOutcome(_describe_failure(outcome)) from outcome
        return "could not connect"
    if outcome.status_code in REFUSED_PAID_STATUSES:
        return "rate limited" if outcome.status_code == 429 else "service unavailable"
    return None


async def _notify(callback: Callable[[float, str], Awaitable[None] | None] | None, delay: float, why: str) -> None:
    if callback is None:
        return
    result = callback(delay, why)
    if asyncio.iscoroutine(result):
        await result


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, httpx.ReadTimeout):
        return "no answer before the read timeout, after the request was sent"
    if isinstance(exc, httpx.WriteTimeout):
        return "a write timeout while sending the request"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection without a complete answer"
    return f"a network failure after sending ({type(exc).__name__})"


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0
