"""Client configuration: base URL, credentials and project, from the environment.

Keys come from ``SCENARIO_API_KEY`` / ``SCENARIO_API_SECRET``, else from the
official SDK's ``SCENARIO_SDK_API_KEY`` / ``SCENARIO_SDK_API_SECRET``.

Credentials are held in a :class:`Credentials` object whose ``repr``/``str``
never show the secret, so a settings object can be logged or put in an
exception without leaking anything.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import SplitResult, urlsplit

from .errors import ConfigurationError, ValidationError
from .spec import check_id

DEFAULT_BASE_URL = "https://api.cloud.scenario.com/v1"
ENV_URL = "SCENARIO_API_URL"
ENV_KEY = "SCENARIO_API_KEY"
ENV_SECRET = "SCENARIO_API_SECRET"
ENV_PROJECT = "SCENARIO_PROJECT_ID"
# The official Python SDK's names (scenario-sdk ``_client.py``), honoured after ours.
ENV_SDK_KEY = "SCENARIO_SDK_API_KEY"
ENV_SDK_SECRET = "SCENARIO_SDK_API_SECRET"
# Key pairs looked up in the environment, in order; a pair counts only when both halves are set.
ENV_KEY_PAIRS = ((ENV_KEY, ENV_SECRET), (ENV_SDK_KEY, ENV_SDK_SECRET))

# What a key and a secret typed into a form may look like (checked before they are stored).
# Scenario keys look like ``api_...``; the rule stays loose on purpose (letters, digits, '.', '_',
# '-'), but a ':' would break HTTP Basic and whitespace or control characters are paste accidents.
KEY_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
KEY_LENGTH = (4, 256)
SECRET_LENGTH = (4, 1024)
ENV_TEAM = "SCENARIO_TEAM_ID"  # optional: where to read the parallel-jobs limits (else the key's own team, "me")

# Scenario's signed CDN hosts; the configured API host is added at run time so
# the emulator's file route is reachable too.
CDN_HOSTS = ("cdn.cloud.scenario.com", "cdn.scenario.com")

MISSING_CREDENTIALS_HELP = (
    "No Scenario API key is configured. Create a key in the Scenario web app "
    "(Workspace settings > API keys), then set the environment variables "
    f"{ENV_KEY} and {ENV_SECRET} before starting the program"
)


class Credentials:
    """An API key and secret for HTTP Basic auth. The secret is never shown."""

    __slots__ = ("_key", "_secret")

    def __init__(self, key: str, secret: str) -> None:
        key = (key or "").strip()
        secret = (secret or "").strip()
        if not key or not secret:
            raise ConfigurationError(MISSING_CREDENTIALS_HELP)
        if ":" in key:
            raise ConfigurationError(f"The Scenario API key must not contain ':' (check {ENV_KEY})")
        self._key = key
        self._secret = secret

    @property
    def key_hint(self) -> str:
        """The key's first characters, safe to show: ``api_ab…``."""
        return self._key[:6] + "…"

    @property
    def account_id(self) -> str:
        """A stable id of the API key for cache keys: a sha256 of the key id only, never of the secret."""
        return hashlib.sha256(self._key.encode("utf-8")).hexdigest()

    @property
    def key_digest(self) -> str:
        """A short one-way digest of the key alone (never the secret): which account a cache entry belongs to."""
        return hashlib.sha256(self._key.encode("utf-8")).hexdigest()[:16]

    def authorization_header(self) -> str:
        token = base64.b64encode(f"{self._key}:{self._secret}".encode()).decode("ascii")
        return f"Basic {token}"

    def __repr__(self) -> str:
        return f"Credentials(key={self.key_hint!r}, secret='***')"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:  # pickling would copy the secret somewhere unexpected
        raise TypeError("Credentials cannot be pickled")


def _safe_echo(parts: SplitResult) -> str:
    """``scheme://host[:port]/path`` of a URL: what an error may show of it.

    The query, fragment and user-info are dropped (a pasted URL may carry a
    token there); the result is capped so a pasted blob stays short.
    """
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:  # a malformed port: show none
        port = None
    if port is not None:
        host = f"{host}:{port}"
    text = (f"{parts.scheme}:" if parts.scheme else "") + (f"//{host}" if parts.netloc else "") + parts.path
    return text if len(text) <= 120 else text[:117] + "..."


def normalise_base_url(url: str) -> str:
    """The API base URL without a trailing slash; ConfigurationError when unusable.

    Error messages show only scheme, host and path of what was given.
    """
    url = (url or "").strip().rstrip("/")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced '[' in the host
        raise ConfigurationError(f"{ENV_URL} must be an http(s) URL such as {DEFAULT_BASE_URL}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{ENV_URL} must be an http(s) URL such as {DEFAULT_BASE_URL}, got {_safe_echo(parts)!r}"
        )
    if parts.username or parts.password:
        raise ConfigurationError(f"{ENV_URL} must not carry credentials; use {ENV_KEY}/{ENV_SECRET}")
    if parts.query or parts.fragment:
        # A query would be sent on every call and shown in reprs: tokens don't belong there.
        raise ConfigurationError(
            f"{ENV_URL} must be a plain base URL without '?' or '#', got {_safe_echo(parts)!r}; "
            f"use {ENV_KEY}/{ENV_SECRET} for credentials and {ENV_PROJECT} for the project"
        )
    return url


def env_key_pair(env: Mapping[str, str] | None = None) -> tuple[str, str, str] | None:
    """``(key, secret, key_variable_name)`` of the first complete pair in :data:`ENV_KEY_PAIRS`, else ``None``.

    Halves of different pairs are never mixed: a ``SCENARIO_API_KEY`` with only a
    ``SCENARIO_SDK_API_SECRET`` is no pair at all.
    """
    env = os.environ if env is None else env
    for key_name, secret_name in ENV_KEY_PAIRS:
        key, secret = (env.get(key_name) or "").strip(), (env.get(secret_name) or "").strip()
        if key and secret:
            return key, secret, key_name
    return None


def check_key_pair(api_key: object, api_secret: object) -> tuple[str, str]:
    """The stripped key and secret typed into a form, or a :class:`ValidationError` naming the field.

    Error texts describe what is allowed, never what was typed (it may be a secret).
    """
    key = api_key.strip() if isinstance(api_key, str) else None
    lo, hi = KEY_LENGTH
    if not key or not lo <= len(key) <= hi or not KEY_PATTERN.fullmatch(key):
        raise ValidationError(
            "apiKey",
            "<hidden>",
            f"the Scenario API key as shown in the web app: {lo} to {hi} letters, digits, '.', '_' or '-' "
            "(no ':' and no spaces), e.g. api_...",
            param="api_key",
        )
    secret = api_secret.strip() if isinstance(api_secret, str) else None
    lo, hi = SECRET_LENGTH
    if not secret or not lo <= len(secret) <= hi or any(ord(c) < 33 or ord(c) == 127 for c in secret):
        raise ValidationError(
            "apiSecret",
            "<hidden>",
            f"the API secret shown once when the key was created: {lo} to {hi} characters, no spaces",
            param="api_secret",
        )
    return key, secret


@dataclass(frozen=True)
class Settings:
    """Everything the client needs to reach Scenario."""

    base_url: str = DEFAULT_BASE_URL
    credentials: Credentials | None = field(default=None, repr=True)
    project_id: str | None = None
    team_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", normalise_base_url(self.base_url))
        for value, env_name in ((self.project_id, ENV_PROJECT), (self.team_id, ENV_TEAM)):
            if value:
                try:
                    check_id("projectId", value, env_name)  # the same id shape: letters, digits, '_' and '-'
                except ValidationError as exc:
                    raise ConfigurationError(str(exc)) from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, require_credentials: bool = False) -> Settings:
        env = os.environ if env is None else env
        pair = env_key_pair(env)
        creds = Credentials(pair[0], pair[1]) if pair is not None else None
        if creds is None and require_credentials:
            raise ConfigurationError(MISSING_CREDENTIALS_HELP)
        return cls(
            base_url=env.get(ENV_URL) or DEFAULT_BASE_URL,
            credentials=creds,
            project_id=(env.get(ENV_PROJECT) or "").strip() or None,
            team_id=(env.get(ENV_TEAM) or "").strip() or None,
        )

    def require_credentials(self) -> Credentials:
        if self.credentials is None:
            raise ConfigurationError(MISSING_CREDENTIALS_HELP)
        return self.credentials

    @property
    def api_host(self) -> str:
        """``host[:port]`` of the base URL, as compared by the download allow list."""
        return urlsplit(self.base_url).netloc.lower()

    @property
    def download_hosts(self) -> tuple[str, ...]:
        return CDN_HOSTS + (self.api_host,)
