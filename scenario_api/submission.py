"""Paid submits of one client, from the recorded intent to the job's end: never pay twice, never lose a job.

:class:`Submitter` is what :meth:`ScenarioClient.submit` and :meth:`~ScenarioClient.resume_intent`
run; :class:`PaidJobs` what :meth:`~ScenarioClient.wait_for_job` runs. A submit goes through these
steps, each a method of its own:

1. **Reuse** (with a ledger and ``reuse``): an identical request a dead process
   left unfinished is picked up (:meth:`Submitter._resume`), one that already
   succeeded is served from its job (:meth:`Submitter._reuse_succeeded`);
   nothing is sent.
2. **Slot**: a slot of the account's parallel-job limiter is taken once the
   request is valid, before anything is paid (:class:`_SlotHolder`); a 429
   that shows this process is over the limit trades it for a new one.
3. **Intent**: the request is written to the ledger before the first byte
   leaves (:meth:`.intents.Intents.begin`).
4. **Send**: :meth:`.transport.Transport.paid` resends only after a connect
   failure or a 429/503 refusal, and before any resend that follows an answer
   it looks for a job the earlier send created (:meth:`Submitter._check_before_resend`).
5. **Ambiguous outcome**: a timeout, a dropped connection, a 500/502/504 or a
   2xx without a usable job is reconciled (:class:`.reconcile.Reconciler`),
   never resent; a 429/503 to the end is looked up once.
6. **Adopt**: the job the reply names is claimed for the intent (process and
   ledger) and followed with its slot until it ends (:meth:`PaidJobs.wait`).

A cancelled submit (Stop) whose request may be on the wire, or which already
holds a job (its reply named it, or it was adopted), goes through the
reconciler's bounded recovery (:meth:`.reconcile.Reconciler.recover_cancelled_submit`,
shielded by :mod:`.cancellation`): the job is cancelled remotely and recorded,
or what to check is logged. The ``CancelledError`` always goes on.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from . import spec
from .cancellation import finish_shielded
from .errors import (
    AmbiguousOutcome,
    JobCanceledError,
    JobFailedError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ScenarioError,
    ServerError,
)
from .intents import Intents, Ticket
from .ledger import SUBMIT
from .limits import CUSTOM, INFERENCE, AccountLimiter, Slot, TeamLimits, action_limit
from .models import ControlNetRequest, Job, JobStatus, Model, Submission
from .pacing import EtaSchedule
from .reconcile import Reconciler, iso_utc, sent_at
from .transport import LOG, Transport, WireState, api_error, decode_body
from .watch import Limits, NextDelay, OnUpdate, fixed_interval, watch_job

if TYPE_CHECKING:
    from .client import ScenarioClient
    from .ledger import Record  # annotations only: the ledger's records load when a ledger is used

__all__ = ["DRY_RUN_STATUS", "OnWait", "PaidJobs", "Submitter", "route"]

DRY_RUN_STATUS = 269  # Scenario's answer to a price quote (dry run)
OnWait = Callable[[float, str], "Awaitable[None] | None"]  # (seconds, why) before a wait: "waiting for a slot"


class _Displaced(Exception):
    """An adopted job was taken back by the run whose own reply named it."""


class _FoundBeforeResend(Exception):
    """The check before a paid resend found the job the earlier send created."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.job_id)
        self.job = job


def _first_sent(wire: WireState) -> float:
    """Wall-clock time of the first send: any attempt since may have created the job."""
    return wire.first_send if wire.first_send is not None else sent_at(wire)


def _endpoint_of(path: str) -> str | None:
    """The endpoint name (as :func:`~.reconcile.input_matches` wants it) of a submit path kept in the ledger."""
    if path.startswith("/generate/custom/"):
        return spec.CUSTOM_ENDPOINT
    name = path.removeprefix("/generate/")
    return name if name in (spec.TXT2IMG, spec.IMG2IMG) else None


def _job_in_reply(data: Any) -> Job | None:
    """The job of a submit's 2xx answer, or None when the answer holds no usable job id."""
    if not isinstance(data, Mapping) or not isinstance(data.get("job"), Mapping):
        return None
    try:
        job = Job.from_api(data)
    except ScenarioError:
        return None
    if not job.job_id or not spec.JOB_ID_RE.fullmatch(job.job_id):
        return None
    return job


def _reply_cost(data: Any, job: Job) -> float | None:
    """The reply's ``creativeUnitsCost`` when it is a finite number, else the job's own cost."""
    cost = data.get("creativeUnitsCost") if isinstance(data, Mapping) else None
    if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost):
        return job.cost
    return float(cost)


def route(request: ControlNetRequest, model: Model, body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """``(endpoint, path, match body)``: where ``body`` goes and what reconciliation compares.

    The custom body carries the model id in the path; the match body adds
    it so a job's echo can be checked against it (a LoRA or composition
    sent in the model's own ``modelId`` input wins over it).
    """
    if model.family == spec.CUSTOM:
        return spec.CUSTOM_ENDPOINT, spec.custom_path(model.model_id), {"modelId": model.model_id, **body}
    return request.endpoint, spec.endpoint_path(request.endpoint), dict(body)


async def _notify_wait(on_wait: OnWait | None, seconds: float, why: str) -> None:
    if on_wait is not None:
        result = on_wait(seconds, why)
        if inspect.isawaitable(result):
            await result


async def _take(limiter: AccountLimiter, timeout: float) -> Slot:
    if not await limiter.acquire(timeout):
        LOG.warning("no free Scenario slot after %.0f s of waiting; submitting anyway (%r)", timeout, limiter)
    return Slot(limiter)


def _give_back_all(slots: dict[str, Slot]) -> None:
    for slot in list(slots.values()):
        slot.give_back()
    slots.clear()


class _SlotHolder:
    """The parallel-job slot of one submit (:mod:`.limits`).

    Taken once the request is valid, before anything is paid: above the
    account's limit the submit waits here, politely, instead of being refused.
    A 429 teaches the limit (``details.actionLimit``); when this process is
    over it, the slot is given back and taken again before the resend.
    """

    def __init__(self, client: ScenarioClient, team_limits: TeamLimits, on_wait: OnWait | None) -> None:
        self._client = client
        self._team_limits = team_limits
        self._on_wait = on_wait
        self._limiter: AccountLimiter | None = None
        self.slot: Slot | None = None

    async def take(self, model: Model) -> None:
        limiter = self._limiter = self._client.limiter(CUSTOM if model.custom else INFERENCE)
        await self._team_limits.learn()
        if limiter.limit is not None and limiter.active >= limiter.limit:
            await _notify_wait(self._on_wait, 0.0, "waiting for a free Scenario slot")
        self.slot = await _take(limiter, self._client.slot_wait)

    async def before_retry(self, response: httpx.Response) -> bool:
        """Called by the transport before waiting out a refusal; True when the wait for a slot replaced it."""
        limiter = self._limiter
        if limiter is None or response.status_code != 429:
            return False
        limiter.learn(action_limit(response), "429")
        if limiter.limit is None or limiter.active <= limiter.limit:
            return False  # the slots are taken elsewhere (another program, the web app): wait as told
        self.give_back()
        await _notify_wait(self._on_wait, 0.0, "waiting for a free Scenario slot")
        self.slot = await _take(limiter, self._client.slot_wait)
        return True

    def give_back(self) -> None:
        if self.slot is not None:
            self.slot.give_back()


@dataclass
class _Attempt:
    """One paid submit on its way: its request, where it goes, what reconciliation compares, its intent."""

    request: ControlNetRequest
    endpoint: str
    path: str
    match: Mapping[str, Any]
    ticket: Ticket
    wire: WireState = field(default_factory=WireState)

    @property
    def what(self) -> str:
        return f"the generation request ({self.path})"


class Submitter:
    """The paid submits of one :class:`~.client.ScenarioClient` (see the module doc); jobs go on to :class:`PaidJobs`.

    Timing and policy are read from the client when used (``paid_retry``,
    ``submit_timeout``, ``reuse``, ``slot_wait``, the poll and reconcile
    settings), so they can be changed on the client at any time.
    """

    def __init__(
        self,
        client: ScenarioClient,
        *,
        transport: Transport,
        intents: Intents,
        reconciler: Reconciler,
        team_limits: TeamLimits,
        jobs: PaidJobs,
    ) -> None:
        self._client = client
        self._team_limits = team_limits
        self._transport = transport
        self._intents = intents
        self._reconciler = reconciler
        self._jobs = jobs
        self._served: set[int] = set()  # ledger intents whose results this client already served again

    # ------------------------------------------------------------------ submit

    async def submit(
        self, request: ControlNetRequest, model: Model, body: dict[str, Any], *, on_wait: OnWait | None = None
    ) -> Submission:
        """Start the paid generation of a seeded, checked ``request`` (``body``: its wire body) and return its job.

        The job's slot is held until :meth:`PaidJobs.wait` sees the job end.
        """
        slot = _SlotHolder(self._client, self._team_limits, on_wait)
        try:
            sub = await self._submit(request, model, body, slot, on_wait)
        except BaseException:
            slot.give_back()  # no job (or one recovered and cancelled): the slot is free again
            raise
        self._jobs.follow(sub.job, slot.slot)
        return sub

    async def _submit(
        self, request: ControlNetRequest, model: Model, body: dict[str, Any], slot: _SlotHolder, on_wait: OnWait | None
    ) -> Submission:
        endpoint, path, match = route(request, model, body)
        await slot.take(model)  # valid: wait for a parallel-job slot before anything is paid
        fingerprint = self._intents.fingerprint(SUBMIT, path, match)
        if self._client.reuse:
            reused = await self._reuse(request, fingerprint, endpoint, match)
            if reused is not None:
                return reused
        ticket = await self._intents.begin(
            SUBMIT, path, match, prompt=str(request.prompt or ""), seed=request.seed, fingerprint=fingerprint
        )
        attempt = _Attempt(request, endpoint, path, match, ticket)
        try:
            sub = await self._send_and_settle(attempt, body, slot, on_wait)
        except asyncio.CancelledError:
            await self._settle_cancelled(attempt)
            raise
        self._jobs.hold(sub.job_id, ticket)
        return sub

    async def _send_and_settle(
        self, attempt: _Attempt, body: dict[str, Any], slot: _SlotHolder, on_wait: OnWait | None
    ) -> Submission:
        """Send the paid request once (resends only as the transport allows) and settle its outcome."""
        try:
            response = await self._send(attempt, body, slot, on_wait)
        except _FoundBeforeResend as found:
            return Submission(job=found.job, creative_units=found.job.cost, adopted=True, request=attempt.request)
        except AmbiguousOutcome as exc:
            LOG.warning("submit outcome unknown (%s); looking for the job instead of resubmitting", exc.cause)
            return await self._reconcile(attempt, exc.cause)
        except ScenarioError as exc:
            if attempt.wire.answered and isinstance(exc, (RateLimitedError, ServerError)):
                # refused to the end (429/503), but such an answer may follow an acceptance: look once
                adopted = await self._adopt_if_created(attempt)
                if adopted is not None:
                    return adopted
            await self._intents.refused(attempt.ticket, exc.message)
            raise
        return await self._accept_reply(attempt, response)

    async def _send(
        self, attempt: _Attempt, body: dict[str, Any], slot: _SlotHolder, on_wait: OnWait | None
    ) -> httpx.Response:
        """The paid POST; the intent is marked sent once a byte may have left."""
        client = self._client

        async def check_before_resend() -> None:
            # A 429/503 may come from a gateway after Scenario accepted: never resend over a job that exists.
            await self._check_before_resend(attempt)

        try:
            return await self._transport.paid(
                "POST",
                attempt.path,
                what=attempt.what,
                policy=client.paid_retry,
                json=body,
                timeout=httpx.Timeout(client.submit_timeout, connect=min(10.0, client.submit_timeout)),
                on_wait=on_wait,
                wire=attempt.wire,
                before_resend=check_before_resend,
                before_retry=slot.before_retry,
            )
        finally:
            if attempt.wire.first_send is not None:
                await self._intents.sent(attempt.ticket)

    async def _accept_reply(self, attempt: _Attempt, response: httpx.Response) -> Submission:
        """A final answer: refused, or a job to claim; a 2xx without a usable job is reconciled."""
        ticket, status = attempt.ticket, response.status_code
        if status == DRY_RUN_STATUS:
            await self._intents.refused(ticket, "answered with a price quote (HTTP 269)")
            raise ScenarioError("Scenario answered the generation request with a price quote (HTTP 269): no job")
        if not 200 <= status < 300:
            error = api_error(response, what=attempt.what)
            await self._intents.refused(ticket, error.message)
            raise error
        data = decode_body(response)
        job = _job_in_reply(data)
        if job is None:
            # A 2xx without a usable job (broken JSON, an HTML page, no or a malformed id): the job may exist.
            cause = f"HTTP {status} answer without a usable job id"
            LOG.warning("submit answered %s; looking for the job instead of resubmitting", cause)
            return await self._reconcile(attempt, cause)
        cost = _reply_cost(data, job)
        if not await self._intents.claim(ticket, job.job_id, adopted=False, cost=cost):
            held = ScenarioError(
                f"Scenario answered the generation request with job {job.job_id}, which another run already "
                "holds; it was not adopted twice. Check the job with Poll Job",
                job_id=job.job_id,
            )
            await self._intents.uncertain(ticket, held.message, [job.job_id])
            raise held
        LOG.info("submitted job %s (seed %s)", job.job_id, attempt.request.seed)
        return Submission(job=job, creative_units=cost, adopted=False, request=attempt.request)

    async def _reconcile(self, attempt: _Attempt, cause: str) -> Submission:
        """Adopt the job an ambiguous submit created, or raise :class:`OutcomeUnknownError`; never resend."""
        return await self._reconciler.adopt(
            attempt.request, attempt.endpoint, attempt.match, _first_sent(attempt.wire), cause, attempt.ticket
        )

    async def _settle_cancelled(self, attempt: _Attempt) -> None:
        """The submit's task was cancelled: recover the job it may hold or have created, else record why not."""
        ticket, wire = attempt.ticket, attempt.wire
        if ticket.job_id is not None or wire.maybe_sent:
            # a reply named the job (or one was adopted) but the caller is gone, or the request may be on the wire
            await self._reconciler.recover_cancelled_submit(attempt.endpoint, attempt.match, _first_sent(wire), ticket)
        elif wire.answered:
            await self._intents.uncertain(
                ticket, "cancelled while waiting to resend after a 429/503 answer; a job may exist"
            )
        else:
            await self._intents.refused(ticket, "cancelled before the request was sent")

    async def _check_before_resend(self, attempt: _Attempt) -> None:
        """Before a paid resend: adopt a matching job created since the first send, or refuse to resend blind."""
        found = await self._reconciler.look_for_job(
            attempt.endpoint, attempt.match, _first_sent(attempt.wire), attempts=1, interval=0.0, ticket=attempt.ticket
        )
        if found.job is not None:
            LOG.warning(
                "Scenario created job %s although it answered 429/503; adopted it instead of resending",
                found.job.job_id,
            )
            raise _FoundBeforeResend(found.job)
        if found.lookup_error is not None or found.candidates:
            why = "the job list could not be read" if found.lookup_error else "several matching jobs exist"
            raise AmbiguousOutcome(f"a 429/503 answer, and before resending {why}")

    async def _adopt_if_created(self, attempt: _Attempt) -> Submission | None:
        try:
            await self._check_before_resend(attempt)
        except _FoundBeforeResend as found:
            return Submission(job=found.job, creative_units=found.job.cost, adopted=True, request=attempt.request)
        except AmbiguousOutcome as exc:
            return await self._reconcile(attempt, exc.cause)
        return None

    # ------------------------------------------------------------------ reuse and resume

    async def _reuse(
        self, request: ControlNetRequest, fingerprint: str, endpoint: str, match: Mapping[str, Any]
    ) -> Submission | None:
        """Results already paid for: a succeeded job, or one a crashed run left; None to submit anew."""
        resumed = await self._resume(request, fingerprint, endpoint, match)
        if resumed is not None:
            return resumed
        return await self._reuse_succeeded(request, fingerprint)

    async def _resume(
        self, request: ControlNetRequest, fingerprint: str, endpoint: str, match: Mapping[str, Any]
    ) -> Submission | None:
        """The job of an identical request whose process died before it finished (a crash, kill -9, Ctrl-C)."""
        for record in await self._intents.resumable(fingerprint):
            if record.id in self._served:
                continue
            self._served.add(record.id)
            ticket = self._intents.take_over(record)
            if record.job_id:
                job = await self._resumed_job(record.job_id)
            else:
                job = await self._resumed_lookup(record, ticket, endpoint, match)
            if job is not None:
                self._jobs.hold(job.job_id, ticket)
                return Submission(job=job, creative_units=0.0, adopted=True, request=request, reused=True)
            if not record.job_id:
                await self._intents.refused(ticket, "no job was found for it when the same request ran again")
        return None

    async def _resumed_job(self, job_id: str) -> Job | None:
        """The job an earlier run's intent already names, unless it is gone or ended without results."""
        try:
            job = await self._client.get_job(job_id)
        except NotFoundError:
            await self._intents.finished(job_id, "failed", reason="the job no longer exists")
            return None
        if job.status in (JobStatus.FAILURE, JobStatus.CANCELED):
            await self._intents.finished(job_id, "failed" if job.status == JobStatus.FAILURE else "canceled")
            return None
        LOG.info("resumed job %s, left unfinished by an earlier run; nothing submitted", job.job_id)
        return job

    async def _resumed_lookup(
        self, record: Record, ticket: Ticket, endpoint: str, match: Mapping[str, Any]
    ) -> Job | None:
        """The job of an earlier run's unanswered request, looked for once; OutcomeUnknownError when unsure."""
        sent = record.first_sent_at or record.created_at
        found = await self._reconciler.look_for_job(endpoint, match, sent, attempts=1, interval=0.0, ticket=ticket)
        if found.job is not None:
            LOG.info("found job %s of an earlier run's unanswered request; nothing submitted", found.job.job_id)
            return found.job
        if found.lookup_error is not None or found.candidates:
            raise OutcomeUnknownError(
                "Scenario: an earlier run sent this same request and stopped before knowing its outcome, and "
                "the job list could not settle it "
                f"({'several matching jobs' if found.candidates else 'the job list could not be read'}); "
                "nothing was submitted. Check 'python -m scenario_api jobs --local --pending'"
            )
        return None

    async def _reuse_succeeded(self, request: ControlNetRequest, fingerprint: str) -> Submission | None:
        """An earlier succeeded job with the same fingerprint, whose assets still exist; None to submit anew."""
        record = await self._intents.reusable(fingerprint, kind=SUBMIT, exclude=self._served)
        if record is None or not record.job_id:
            return None
        try:
            job = await self._client.get_job(record.job_id)
            if job.status != JobStatus.SUCCESS or not job.asset_ids:
                raise NotFoundError("not a finished job any more")
            for asset_id in job.asset_ids:
                await self._client.get_asset(asset_id)
        except NotFoundError:
            LOG.info("job %s can no longer be reused (its results are gone); submitting anew", record.job_id)
            self._served.add(record.id)
            return None
        self._served.add(record.id)
        LOG.info("reused job %s (same request and seed, already paid for); nothing submitted", job.job_id)
        return Submission(job=job, creative_units=0.0, adopted=False, request=request, reused=True)

    async def resume_intent(self, record: Record) -> str | None:
        """Take over an unfinished ledger intent left by a process that is gone; return its job id, or None.

        An accepted intent already names its job. One that was being sent (or
        whose outcome was unknown) is looked for in the job list with its stored
        request, from a few seconds before it was written; the job found is
        claimed for it. None: no job could be found (the outcome stays unknown).
        """
        ticket = self._intents.take_over(record)
        if record.job_id:
            self._jobs.hold(record.job_id, ticket)
            return record.job_id
        if not record.request:
            return None
        endpoint = _endpoint_of(record.endpoint)
        if endpoint is None or not isinstance(record.request.get("seed"), int):
            return None
        found = await self._reconciler.look_for_job(
            endpoint,
            record.request,
            record.first_sent_at or record.created_at,
            attempts=self._client.reconcile_attempts,
            interval=self._client.reconcile_interval,
            ticket=ticket,
        )
        if found.job is None:
            await self._intents.uncertain(
                ticket,
                "no matching job found when resuming"
                + (f"; candidates: {', '.join(found.candidates)}" if found.candidates else ""),
                found.candidates,
            )
            return None
        self._jobs.hold(found.job.job_id, ticket)
        return found.job.job_id


class PaidJobs:
    """The paid jobs of one client (submitted, adopted or taken over), until each is followed to its end.

    Each job keeps the ticket of the intent that holds it (an adopted job is
    checked on every poll to still be this run's), its parallel-job slot
    (given back when the job ends or the caller stops following it), and when
    its submit was answered (the ETA schedule's clock). A caller that stops
    following (cancellation) sends the job's remote cancel, shielded.
    """

    def __init__(self, client: ScenarioClient, intents: Intents) -> None:
        self._client = client
        self._intents = intents
        self._tickets: dict[str, Ticket] = {}  # job id -> the ticket of this client's submit that holds it
        self._submitted: dict[str, tuple[float, str | None]] = {}  # job id -> (local time of the answer, createdAt)
        self._slots: dict[str, Slot] = {}  # job id -> its parallel-job slot, held until the job is followed to its end
        self.asset_jobs: dict[str, str] = {}  # asset id -> job id, for download receipts
        weakref.finalize(client, _give_back_all, self._slots)  # a client dropped unclosed never keeps slots

    def hold(self, job_id: str, ticket: Ticket) -> None:
        """``ticket``'s intent holds ``job_id`` (its reply named it, it was adopted, or it was taken over)."""
        self._tickets[job_id] = ticket

    def follow(self, job: Job, slot: Slot | None) -> None:
        """Remember a new job's slot and when its submit answer arrived (the ETA schedule's clock offset)."""
        if len(self._submitted) > 1000:
            self._submitted.pop(next(iter(self._submitted)))
        self._submitted[job.job_id] = (time.monotonic(), job.created_at)
        if slot is None:
            return
        old = self._slots.get(job.job_id)
        self._slots[job.job_id] = slot
        if old is not None and old is not slot:
            old.give_back()

    def release_slot(self, job_id: str) -> None:
        slot = self._slots.pop(job_id, None)
        if slot is not None:
            slot.give_back()

    def release_all(self) -> None:
        """Give back every held slot (the client closes)."""
        for job_id in list(self._slots):
            self.release_slot(job_id)

    def schedule(self, job_id: str) -> EtaSchedule:
        """The ETA-aware poll schedule for a job (submitted by this client or not), with the client's policy."""
        submitted_at, created_at = self._submitted.get(job_id, (None, None))
        return EtaSchedule(self._client.poll_policy, submitted_at=submitted_at, created_at=created_at)

    async def wait(
        self,
        job_id: str,
        *,
        on_progress: OnUpdate | None,
        timeout: float | None,
        poll_interval: float | None,
        next_delay: NextDelay | None,
    ) -> Job:
        """Follow ``job_id`` with the one watching loop (:func:`.watch.watch_job`); see ``wait_for_job``."""
        ticket = self._tickets.get(job_id)
        interval = self._client.poll_interval if poll_interval is None else max(0.0, poll_interval)
        first_delay = 0.0
        if next_delay is None and interval is None:
            next_delay = self.schedule(job_id)
            if job_id in self._submitted:
                first_delay = next_delay.first_delay()
        try:
            job = await watch_job(
                self._client,
                job_id,
                on_update=self._on_update(job_id, ticket, on_progress),
                limits=Limits(run_timeout=timeout),
                next_delay=next_delay or fixed_interval(interval or 0.0),
                max_failures=self._client.max_poll_failures,
                first_delay=first_delay,
            )
            if isinstance(next_delay, EtaSchedule):
                next_delay(job)  # the finished job teaches the schedule its phase lengths (HISTORY)
        except asyncio.CancelledError:
            await self.stop_following(job_id)
            raise
        except _Displaced:
            assert ticket is not None
            raise _displaced_error(job_id, ticket) from None
        except (JobFailedError, JobCanceledError) as exc:
            state = "failed" if isinstance(exc, JobFailedError) else "canceled"
            await self._intents.finished(job_id, state, reason=str(exc))
            raise
        finally:
            self.release_slot(job_id)  # the job ended (or we stopped following it): its slot is free
        await self._intents.finished(job_id, "succeeded", asset_ids=job.asset_ids)
        for asset_id in job.asset_ids:
            self.asset_jobs[asset_id] = job_id
        return job

    def _on_update(self, job_id: str, ticket: Ticket | None, on_progress: OnUpdate | None) -> OnUpdate:
        """After every poll: an adopted job must still be this run's; then the caller's callback."""

        async def on_update(job: Job) -> None:
            if ticket is not None and ticket.adopted and not await self._intents.owns(ticket, job_id):
                raise _Displaced(job_id)
            if on_progress is not None:
                result = on_progress(job)
                if inspect.isawaitable(result):
                    await result

        return on_update

    async def stop_following(self, job_id: str) -> None:
        """The caller stopped (cancelled): free the slot and cancel the job remotely if this run owns it."""
        self.release_slot(job_id)
        ticket = self._tickets.get(job_id)
        if ticket is None or await self._intents.owns(ticket, job_id):
            await self.cancel_shielded(job_id)
            await self._intents.finished(job_id, "canceled", reason="stopped by the caller; a cancel was sent")
        else:
            LOG.warning("job %s belongs to another run; it was not cancelled", job_id)

    async def cancel_shielded(self, job_id: str) -> None:
        """Best-effort cancel that survives the caller's own cancellation (and a second one)."""
        client = self._client
        outcome = await finish_shielded(client.cancel_job(job_id, best_effort=True), bound=client.cancel_timeout + 1.0)
        if not outcome.ok:
            why = "timed out" if outcome.timed_out else type(outcome.error).__name__
            LOG.warning("best-effort cancel of job %s incomplete (%s)", job_id, why)
        if outcome.absorbed:
            raise asyncio.CancelledError()  # the caller was cancelled meanwhile: that goes on now


def _displaced_error(job_id: str, ticket: Ticket) -> OutcomeUnknownError:
    sent = iso_utc(datetime.fromtimestamp(ticket.begun_at, UTC))
    return OutcomeUnknownError(
        f"Scenario: job {job_id}, adopted after a lost reply, turned out to belong to another run (whose "
        "own reply named it); it was left to that run and not cancelled. The outcome of this request "
        f"(sent at {sent}, prompt {ticket.prompt!r}, seed {ticket.seed}) is unknown: check your recent jobs "
        "with Poll Job before running again",
        job_id=job_id,
    )
