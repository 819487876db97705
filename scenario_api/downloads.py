"""Credential-free downloads of result files from allow-listed hosts.

Scenario hands out signed CDN URLs for assets. Fetching them must never carry
the API key: this module owns a *separate* ``httpx.AsyncClient`` with no auth,
no cookies from the API client and only ``Accept`` / ``User-Agent`` /
``Accept-Encoding: identity`` headers. Redirects are followed by hand (at most
:data:`MAX_REDIRECTS`), each hop re-checked against the allow list, so a
redirect can never lead us to an arbitrary host.

Failures are typed so the client can react: an expired/forbidden URL or a
truncated body is worth a fresh URL and another try; a refused host or an
oversized file is not.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import os
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urljoin, urlsplit

import httpx

from .errors import (
    DownloadError,
    DownloadRefusedError,
    ExpiredURLError,
    TransientDownloadError,
    TruncatedDownloadError,
)
from .transport import LOG, USER_AGENT, LoopBoundClient, install_log_redaction, shared_ssl_context

__all__ = [
    "MAX_REDIRECTS",
    "DEFAULT_MAX_BYTES",
    "DownloadRefusedError",
    "ExpiredURLError",
    "TruncatedDownloadError",
    "TransientDownloadError",
    "HostPolicy",
    "Downloader",
]

MAX_REDIRECTS = 2
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Total time one file may take, redirects included, on top of the per-read timeout: a host that trickles
# bytes (each read just under the read timeout) must still end. ``SCENARIO_DOWNLOAD_TIMEOUT`` seconds.
ENV_DOWNLOAD_DEADLINE = "SCENARIO_DOWNLOAD_TIMEOUT"
DEFAULT_DOWNLOAD_DEADLINE = 120.0


def download_deadline(env: Mapping[str, str] | None = None) -> float:
    """``SCENARIO_DOWNLOAD_TIMEOUT`` (seconds, finite, > 0), else 120."""
    text = ((os.environ if env is None else env).get(ENV_DOWNLOAD_DEADLINE) or "").strip()
    if not text:
        return DEFAULT_DOWNLOAD_DEADLINE
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        LOG.warning("%s must be a number of seconds > 0; using %g", ENV_DOWNLOAD_DEADLINE, DEFAULT_DOWNLOAD_DEADLINE)
        return DEFAULT_DOWNLOAD_DEADLINE
    return value


_EXPIRED_STATUSES = frozenset({401, 403, 404, 410})
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split_netloc(entry: str) -> tuple[str, int | None]:
    """``host[:port]`` -> (bracket-free lowercase host, port or None)."""
    parts = urlsplit("//" + entry.strip())
    return (parts.hostname or "").lower(), parts.port


class HostPolicy:
    """Which URLs may be downloaded.

    ``allowed`` entries are ``host`` (matches that host on the scheme's default
    port) or ``host:port`` (exact). Plain ``http`` is accepted only for loopback
    hosts and for the configured API host (so the local emulator's file route
    works); everything else must be https.
    """

    def __init__(self, allowed: Iterable[str], *, api_host: str | None = None) -> None:
        self.allowed = tuple(h.strip().lower() for h in allowed if h and h.strip())
        self._allowed = tuple(_split_netloc(h) for h in self.allowed)
        self._api = _split_netloc(api_host) if api_host else None

    def check(self, url: str) -> None:
        """Raise :class:`DownloadRefusedError` unless ``url`` may be fetched."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            raise DownloadRefusedError(f"Refusing to download from a malformed URL ({len(url)} chars)") from None
        if parts.scheme not in ("http", "https") or not host:
            raise DownloadRefusedError(
                f"Refusing to download from a {parts.scheme or 'scheme-less'} URL: only http(s) file URLs are fetched"
            )
        if parts.username or parts.password:
            raise DownloadRefusedError(f"Refusing to download from a URL with embedded credentials (host {host})")
        default_port = 443 if parts.scheme == "https" else 80
        effective = port if port is not None else default_port
        shown = host if port is None else f"{host}:{port}"

        def matches(entry: tuple[str, int | None]) -> bool:
            e_host, e_port = entry
            return e_host == host and (e_port == effective if e_port is not None else effective == default_port)

        if not any(matches(e) for e in self._allowed):
            raise DownloadRefusedError(
                f"Refusing to download from host '{shown}': allowed hosts are {', '.join(self.allowed) or 'none'}"
            )
        if parts.scheme == "http" and not (is_loopback(host) or (self._api is not None and matches(self._api))):
            raise DownloadRefusedError(
                f"Refusing a plain-http download from '{shown}': https is required except for loopback "
                "or the configured API host"
            )


def safe_url(url: str) -> str:
    """Host and path only: the signed query is a bearer token and stays out of logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class Downloader:
    """Fetches file URLs without credentials, enforcing :class:`HostPolicy` and a size cap."""

    def __init__(
        self,
        policy: HostPolicy,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: httpx.Timeout | float = DEFAULT_DOWNLOAD_TIMEOUT,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.policy = policy
        self.max_bytes = max_bytes
        self._timeout = timeout
        self._pool = LoopBoundClient(self._make_client, owner="ScenarioClient downloader")

    def _make_client(self) -> httpx.AsyncClient:
        install_log_redaction()
        return httpx.AsyncClient(
            verify=shared_ssl_context(),
            headers={"Accept": "image/*, */*;q=0.5", "User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,  # no proxy/netrc surprises: a download goes straight to the allowed host
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def fetch(self, url: str) -> bytes:
        """The body of ``url``; follows up to :data:`MAX_REDIRECTS` checked redirects.

        The whole fetch has a total deadline (:func:`download_deadline`) on top
        of the per-read timeout; past it, a :class:`DownloadError` says so.
        """
        deadline = download_deadline()
        try:
            async with asyncio.timeout(deadline):
                return await self._fetch(url)
        except TimeoutError:
            raise DownloadError(
                f"The download from {safe_url(url)} did not finish within {deadline:g} s "
                f"({ENV_DOWNLOAD_DEADLINE}); the file host is too slow"
            ) from None

    async def _fetch(self, url: str) -> bytes:
        client = self._pool.get()
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            self.policy.check(current)
            started = time.monotonic()
            try:
                async with client.stream("GET", current) as response:
                    if response.status_code in (301, 302, 303, 307, 308):
                        location = response.headers.get("location")
                        if not location:
                            raise DownloadError(
                                f"The file host sent a redirect without a location ({safe_url(current)})"
                            )
                        LOG.info("download %s -> %s redirect", safe_url(current), response.status_code)
                        current = urljoin(current, location)
                        continue
                    data = await self._read_body(response, current)
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.RemoteProtocolError):
                    raise TruncatedDownloadError(
                        f"The download from {safe_url(current)} was cut off ({exc.__class__.__name__})"
                    ) from None
                raise TransientDownloadError(
                    f"The download from {safe_url(current)} failed: {type(exc).__name__}"
                ) from None
            LOG.info(
                "download %s -> %d bytes (%.0f ms)", safe_url(current), len(data), (time.monotonic() - started) * 1000
            )
            return data
        raise DownloadRefusedError(f"The file host redirected more than {MAX_REDIRECTS} times; gave up")

    async def _read_body(self, response: httpx.Response, url: str) -> bytes:
        status = response.status_code
        where = safe_url(url)
        if status in _EXPIRED_STATUSES:
            raise ExpiredURLError(f"The file URL was refused (HTTP {status}); it has probably expired ({where})")
        if status in _TRANSIENT_STATUSES or status >= 500:
            raise TransientDownloadError(f"The file host answered HTTP {status} ({where})")
        if status != 200:
            raise DownloadError(f"The file host answered HTTP {status} ({where})")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise DownloadError(f"The file host sent a {encoding!r}-encoded body although identity was requested")
        announced = _content_length(response)
        if announced is not None and announced > self.max_bytes:
            raise DownloadRefusedError(
                f"The file is {announced} bytes, above the {self.max_bytes}-byte download limit ({where})"
            )
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > self.max_bytes:
                raise DownloadRefusedError(f"The file exceeded the {self.max_bytes}-byte download limit ({where})")
            chunks.append(chunk)
        if announced is not None and received < announced:
            raise TruncatedDownloadError(f"The download stopped at {received} of {announced} bytes ({where})")
        return b"".join(chunks)


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    try:
        n = int(value) if value is not None else None
    except ValueError:
        return None
    return n if n is not None and n >= 0 else None
