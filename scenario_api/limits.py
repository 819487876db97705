"""How many jobs an account may run at once, and a process-wide queue that respects it (issue 9).

Scenario limits each team to a number of parallel jobs (``parallelInferences``
for the ControlNet endpoints, ``parallelCustomJobs`` for ``/generate/custom``)
and answers 429 above it. :class:`AccountLimiter` keeps this process at or
under that number, so jobs above it wait their turn here, politely, instead of
being refused:

* the limit comes from ``GET /teams/{teamId}/limits`` when the key may read
  it, else from the ``details.actionLimit`` of a 429, else it is unknown
  (no local cap: the first 429 teaches it);
* one limiter per account and kind, shared by the whole process (every
  prompt's event loop, the CLI, the web routes): it holds plain counters
  under a thread lock, and each waiter's future belongs to the waiter's own
  loop, woken with ``call_soon_threadsafe``. Nothing in it is bound to a loop;
* a slot is held from just before the submit until the job is terminal (or
  the caller stops following it), which is how Scenario counts.

:class:`TeamLimits` is one client's reading of the team limits: once per
account and process (:func:`read_team_limits`), concurrent submits of the
client waiting for that one read; :func:`action_limit` reads a 429's ceiling.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from . import spec
from .config import Settings
from .errors import ScenarioError, ValidationError
from .retry import RetryPolicy
from .transport import LOG, Transport, decode_body

__all__ = [
    "AccountLimiter",
    "Slot",
    "TeamLimits",
    "action_limit",
    "limiter_for",
    "forget_limiters",
    "positive_int",
    "read_team_limits",
    "INFERENCE",
    "CUSTOM",
]

INFERENCE = "inference"  # the legacy ControlNet endpoints: parallelInferences
CUSTOM = "custom"  # /generate/custom/{id}: parallelCustomJobs


@dataclass
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


class AccountLimiter:
    """At most ``limit`` slots held at once (None: no cap known yet); FIFO waiting from any event loop."""

    def __init__(self, limit: int | None = None) -> None:
        self._lock = threading.Lock()
        self._limit = _check(limit)
        self._source = "configured" if limit is not None else "unknown"
        self._active = 0
        self._waiters: deque[_Waiter] = deque()
        self.probed = False  # whether someone already asked GET /teams/{id}/limits for this account

    # ------------------------------------------------------------------ state

    @property
    def limit(self) -> int | None:
        with self._lock:
            return self._limit

    @property
    def source(self) -> str:
        """Where the limit came from: ``team limits``, ``429``, ``configured`` or ``unknown``."""
        with self._lock:
            return self._source

    @property
    def active(self) -> int:
        with self._lock:
            return self._active

    @property
    def waiting(self) -> int:
        with self._lock:
            return sum(1 for w in self._waiters if not w.future.done())

    def learn(self, limit: int | None, source: str) -> None:
        """Set the limit (from the team limits route or a 429's ``actionLimit``) and wake whoever now fits."""
        value = _check(limit)
        if value is None:
            return
        with self._lock:
            self._limit, self._source = value, source
        self._wake()

    # ------------------------------------------------------------------ slots

    async def acquire(self, timeout: float | None = None) -> bool:
        """Wait for a slot (FIFO); cancellation while waiting gives nothing up.

        After ``timeout`` seconds of waiting the slot is taken anyway (False is
        returned): a slot leaked by a caller that vanished must never stall
        the process; Scenario's own 429 then has the last word.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._waiters and (self._limit is None or self._active < self._limit):
                self._active += 1
                return True
            waiter = _Waiter(loop, loop.create_future())
            self._waiters.append(waiter)
        self._wake()  # waiters ahead may have gone (cancelled): this one may fit at once
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
            return True
        except TimeoutError:
            with self._lock:
                granted = waiter.future.done() and not waiter.future.cancelled()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                if not granted:
                    waiter.future.cancel()
                    self._active += 1  # over the local cap: let Scenario decide
            return granted
        except asyncio.CancelledError:
            with self._lock:
                granted = waiter.future.done() and not waiter.future.cancelled()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if granted:  # the slot was ours already: hand it on
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            self._active = max(0, self._active - 1)
        self._wake()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """``async with limiter.slot() as s:`` holds one slot; ``s.give_back()`` frees it early (once)."""
        await self.acquire()
        held = Slot(self)
        try:
            yield held
        finally:
            held.give_back()

    def _wake(self) -> None:
        grants: list[_Waiter] = []
        with self._lock:
            while self._waiters and (self._limit is None or self._active < self._limit):
                waiter = self._waiters.popleft()
                if waiter.future.done() or waiter.loop.is_closed():
                    continue
                self._active += 1
                grants.append(waiter)
        for waiter in grants:
            try:
                waiter.loop.call_soon_threadsafe(self._grant, waiter)
            except RuntimeError:  # its loop closed meanwhile
                self.release()

    def _grant(self, waiter: _Waiter) -> None:
        if waiter.future.done():  # cancelled after it was counted in: the slot goes to the next one
            self.release()
        else:
            waiter.future.set_result(None)

    def __repr__(self) -> str:
        return f"AccountLimiter(limit={self.limit}, active={self.active}, waiting={self.waiting}, {self.source})"


class Slot:
    """One held slot of an :class:`AccountLimiter`; :meth:`give_back` is idempotent."""

    def __init__(self, limiter: AccountLimiter) -> None:
        self._limiter = limiter
        self._held = True

    @property
    def held(self) -> bool:
        return self._held

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._limiter.release()


def _check(limit: object) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        return None
    return limit


_registry_lock = threading.Lock()
_registry: dict[tuple[str, str], AccountLimiter] = {}


def limiter_for(account: str, kind: str = INFERENCE) -> AccountLimiter:
    """The process-wide limiter of an account (any stable, secret-free key, e.g. base URL + API key id)."""
    with _registry_lock:
        limiter = _registry.get((account, kind))
        if limiter is None:
            limiter = _registry[(account, kind)] = AccountLimiter()
        return limiter


def forget_limiters() -> None:
    """Drop every limiter (tests; a changed account)."""
    with _registry_lock:
        _registry.clear()


# --------------------------------------------------------------------------- learning the limits


def positive_int(value: Any) -> int | None:
    """``value`` when it is an int above 0 (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def action_limit(response: httpx.Response) -> int | None:
    """``details.actionLimit`` of a 429 body (Scenario's parallel-jobs ceiling), if any."""
    try:
        data = response.json()
    except ValueError:
        return None
    details = data.get("details") if isinstance(data, Mapping) else None
    return positive_int(details.get("actionLimit")) if isinstance(details, Mapping) else None


async def read_team_limits(transport: Transport, settings: Settings, policy: RetryPolicy) -> Mapping[str, Any] | None:
    """``GET /teams/{teamId}/limits`` (``settings.team_id``, else ``me``): the ``limits`` object, or None.

    None when the key may not read it (403), the route or team is unknown
    (404/400), or the network fails: the limits are then learned from the
    first 429's ``details.actionLimit``.
    """
    team = settings.team_id or "me"
    try:
        response = await transport.read(
            "GET", f"/teams/{spec.check_id('projectId', team)}/limits", what="the team limits", policy=policy
        )
    except (ScenarioError, ValidationError) as exc:
        LOG.info("team limits not readable (%s); parallel limits will be learned from 429 answers", exc)
        return None
    data = decode_body(response)
    limits = data.get("limits") if isinstance(data, Mapping) else None
    return limits if isinstance(limits, Mapping) else None


class TeamLimits:
    """One client's learning of its account's limits: ``read()`` (the team limits route) asked once per process.

    ``limiter(kind)`` is the account's limiter of that kind. The lock is made
    in the first event loop that asks (a client lives in one loop).
    """

    def __init__(
        self, read: Callable[[], Awaitable[Mapping[str, Any] | None]], limiter: Callable[[str], AccountLimiter]
    ) -> None:
        self._read = read
        self._limiter = limiter
        self._probe: asyncio.Lock | None = None

    async def learn(self) -> None:
        """Read the team limits once per account and process (concurrent submits of this client wait for it)."""
        inference = self._limiter(INFERENCE)
        if inference.probed:
            return
        if self._probe is None:
            self._probe = asyncio.Lock()
        async with self._probe:
            if inference.probed:
                return
            limits = await self._read()
            inference.probed = True
            if limits:
                inference.learn(positive_int(limits.get("parallelInferences")), "team limits")
                self._limiter(CUSTOM).learn(positive_int(limits.get("parallelCustomJobs")), "team limits")
