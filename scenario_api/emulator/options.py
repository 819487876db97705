"""Knobs of the emulator: phase timing, credits, URL lifetime, credentials.

Kept apart from the server so that tests, the CLI and ``/_emulator/config``
all change the same small dataclasses, and so ``reset`` can return to the
values the emulator was *constructed* with (a test fixture's fast timing
survives a reset).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

DEMO_KEY = "demo-key"
DEMO_SECRET = "demo-secret"

DEFAULT_CREDITS = 1e9
DEFAULT_URL_TTL = 600.0
DEFAULT_PARALLEL = 100  # parallel non-terminal jobs per kind before a submit gets 429
DEFAULT_TEAM_ID = "team_emulator"
PROGRESS_PROFILES = ("linear", "jumpy", "stalled-then-fast")  # see timeline.profile_progress


@dataclass(frozen=True)
class Timing:
    """Seconds spent in each job phase; a job's status is a pure function of them.

    ``finalizing`` is skipped when 0. Each job keeps the timing that was in
    force when it was submitted, so changing it never rewrites running jobs.
    """

    queued: float = 0.2
    warming_up: float = 0.2
    running: float = 0.6
    finalizing: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"Timing.{name} must be a finite number of seconds >= 0, got {value!r}")

    @property
    def total(self) -> float:
        return self.queued + self.warming_up + self.running + self.finalizing

    def updated(self, changes: Mapping[str, Any]) -> Timing:
        """A copy with some phases changed; accepts ``warming-up`` or ``warming_up``."""
        clean = {str(k).replace("-", "_"): v for k, v in changes.items()}
        unknown = set(clean) - set(asdict(self))
        if unknown:
            raise ValueError(f"unknown timing field(s): {', '.join(sorted(unknown))}")
        return replace(self, **clean)

    def scaled(self, factor: float) -> Timing:
        """Every phase multiplied by ``factor`` (a job clock running 1/factor times as fast)."""
        return Timing(*(value * factor for value in asdict(self).values()))


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything ``POST /_emulator/config`` can change."""

    timing: Timing = field(default_factory=Timing)
    credits: float = DEFAULT_CREDITS
    url_ttl: float = DEFAULT_URL_TTL
    short_pages: bool = False
    mixed_sizes: bool = False
    credits_status: int = 402
    credits_reason: str = "Not enough creative units to run this generation"
    ignore_created_after: bool = False  # GET /jobs returns every job, whatever createdAfter says
    clock_skew: float = 0.0  # seconds the server's clock (Date header, job dates) runs ahead of ours
    # Team limits (issue 9): non-terminal jobs beyond these get 429 with Scenario's body shape.
    parallel_inferences: int = DEFAULT_PARALLEL  # legacy ControlNet jobs
    parallel_custom_jobs: int = DEFAULT_PARALLEL  # /generate/custom/{id} jobs
    team_id: str = DEFAULT_TEAM_ID
    team_limits_readable: bool = True  # False: GET /teams/{id}/limits answers 403 (a key without team scope)
    progress_profile: str = "linear"  # how progress moves while in-progress (PROGRESS_PROFILES)
    clock_scale: float = 1.0  # jobs run this many times faster than ``timing`` says (benchmarks)

    @property
    def job_timing(self) -> Timing:
        """The real-time phases of a job submitted now: ``timing`` divided by ``clock_scale``."""
        return self.timing if self.clock_scale == 1.0 else self.timing.scaled(1.0 / self.clock_scale)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["timing"] = asdict(self.timing)
        return data

    def updated(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """Apply a ``/_emulator/config`` body; raises ValueError naming a bad key."""
        kw: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "timing":
                if not isinstance(value, Mapping):
                    raise ValueError('timing must be an object such as {"running": 0.5}')
                kw["timing"] = self.timing.updated(value)
            elif key in ("credits", "url_ttl"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError(f"{key} must be a number")
                kw[key] = float(value)
            elif key == "clock_skew":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError("clock_skew must be a number of seconds")
                if abs(value) > 86400:
                    raise ValueError("clock_skew must be within one day (86400 s)")
                kw[key] = float(value)
            elif key in ("short_pages", "mixed_sizes", "ignore_created_after"):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
                kw[key] = value
            elif key == "credits_status":
                if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
                    raise ValueError("credits_status must be an HTTP error status (400-599)")
                kw[key] = value
            elif key == "credits_reason":
                if not isinstance(value, str) or not value:
                    raise ValueError("credits_reason must be a non-empty string")
                kw[key] = value
            elif key in ("parallel_inferences", "parallel_custom_jobs"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{key} must be an integer >= 1")
                kw[key] = value
            elif key == "team_id":
                if not isinstance(value, str) or not value.strip() or "/" in value:
                    raise ValueError("team_id must be a non-empty id without '/'")
                kw[key] = value.strip()
            elif key == "team_limits_readable":
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
                kw[key] = value
            elif key == "progress_profile":
                if value not in PROGRESS_PROFILES:
                    raise ValueError(f"progress_profile must be one of {', '.join(PROGRESS_PROFILES)}")
                kw[key] = value
            elif key == "clock_scale":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError("clock_scale must be a number > 0")
                if value <= 0:
                    raise ValueError("clock_scale must be a number > 0")
                kw[key] = float(value)
            else:
                raise ValueError(f"unknown config key {key!r}")
        return replace(self, **kw)


@dataclass(frozen=True)
class ServerCredentials:
    """The one key pair the emulator accepts; ``from_env`` records where it came from.

    ``repr`` never shows the secret, so the object can be printed or logged.
    """

    key: str
    secret: str = field(repr=False)
    source: str = "explicit"  # "explicit" | "env" | "demo"

    @classmethod
    def resolve(cls, credentials: tuple[str, str] | None, env: Mapping[str, str] | None = None) -> ServerCredentials:
        """Explicit pair, else both env variables, else the documented demo pair."""
        if credentials is not None:
            key, secret = credentials
            if not key or not secret:
                raise ValueError("credentials must be a (key, secret) pair of non-empty strings")
            return cls(str(key), str(secret), "explicit")
        env = os.environ if env is None else env
        key = (env.get("SCENARIO_API_KEY") or "").strip()
        secret = (env.get("SCENARIO_API_SECRET") or "").strip()
        if key and secret:
            return cls(key, secret, "env")
        return cls(DEMO_KEY, DEMO_SECRET, "demo")

    def describe(self) -> str:
        """A line that is safe to print: the demo pair is public, anything else is hidden."""
        if self.source == "demo":
            return f"credentials: {DEMO_KEY} / (demo secret, see README)"
        where = "SCENARIO_API_KEY / SCENARIO_API_SECRET" if self.source == "env" else "explicit"
        return f"credentials: {self.key[:6]}… / (secret not shown; from {where})"
