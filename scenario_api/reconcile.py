"""Reconciliation: finding the job a submit may have created when its answer was lost.

Never pay twice: after an ambiguous failure of a paid submit (timeout after
sending, dropped connection, 500/502/504) the client does not resend. It lists
the jobs created since the send (``GET /jobs?createdAfter=...``, in the
server's clock from the ``Date`` header, minus a skew), keeps those whose
echoed request matches every field it sent (:func:`input_matches`), skips the
ones already handed to a caller in this process (:data:`CLAIMED_JOBS`) and
adopts the one that is left, or reports what it found and what to check
(:class:`OutcomeUnknownError`). With several candidates, none is picked.

The same lookup serves a submit whose task is cancelled while the paid request
may be on the wire (:meth:`Reconciler.recover_cancelled_submit`): it runs in a
task of its own, is not cut short by further cancellations, and within
:data:`CANCEL_RECOVERY_SECONDS` finds the job, logs it at WARNING and cancels
it, or logs exactly what the user must check.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from . import spec
from .cancellation import finish_shielded
from .errors import OutcomeUnknownError, ScenarioError, ValidationError
from .intents import CLAIMED_JOBS, ClaimedJobs, Intents, Ticket
from .models import ControlNetRequest, Job, Submission
from .transport import LOG, WireState

__all__ = [
    "CANCEL_RECOVERY_SECONDS",
    "CLAIMED_JOBS",
    "ClaimedJobs",
    "Reconciler",
    "Search",
    "input_matches",
    "iso_utc",
    "sent_at",
]

# Upper bound on what a cancelled submit spends looking for (and cancelling) the
# job it may have created before the cancellation goes on. ComfyUI's
# ``asyncio.run`` cancels a leftover task once and then waits for it, so this
# time is spent, but it must stay short.
CANCEL_RECOVERY_SECONDS = 10.0
# Part of that budget kept for sending the cancel itself.
CANCEL_RECOVERY_CANCEL_SHARE = 4.0
MAX_PAGE_SIZE = 100


def iso_utc(moment: datetime) -> str:
    """``2026-05-01T12:00:00.000Z``: the ISO form Scenario uses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _same_text(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.strip() == b.strip()


def _same_int(a: Any, b: Any) -> bool:
    try:
        return int(str(a).strip()) == int(str(b).strip())
    except (TypeError, ValueError):
        return False


def _same_modality(echoed: Any, sent: str) -> bool:
    """Same names in the same order; weights compared only where both sides state one
    (a server may echo ``canny`` as ``canny:1`` or the other way round)."""
    try:
        a = spec.parse_modality(echoed, strict=False)
        b = spec.parse_modality(sent, strict=False)
    except ValidationError:
        return False
    if [i.name for i in a] != [i.name for i in b]:
        return False
    return all(
        x.weight is None or y.weight is None or abs(x.weight - y.weight) < 1e-6 for x, y in zip(a, b, strict=True)
    )


# The emulator (and possibly Scenario) echoes an inline image as a short hash marker.
_DATA_URL_MARKER = re.compile(r"^<data URL sha256:([0-9a-f]{8,64})>$")
_IMAGE_FIELDS = ("controlImage", "controlImageId", "image")
_NUMBER_FIELDS = ("width", "height", "strength", "guidance", "numInferenceSteps")
_CUSTOM_NUMBER_FIELDS = ("controlStrength", "controlStart", "controlEnd")


def _same_number(a: Any, b: Any) -> bool:
    try:
        x, y = float(str(a).strip()), float(str(b).strip())
    except (TypeError, ValueError):
        return False
    return abs(x - y) <= 1e-6 * max(1.0, abs(x), abs(y))


def _same_scheduler(a: Any, b: Any) -> bool:
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    return (spec.canonical_scheduler(a) or a.strip()).lower() == (spec.canonical_scheduler(b) or b.strip()).lower()


def _image_verdict(echoed: Any, sent: Any) -> bool | None:
    """True/False when the echo can tell whether it is the image we sent; None when it cannot.

    Asset ids compare as text. A data URL compares with an echoed data URL, or
    with a ``<data URL sha256:…>`` marker (a prefix of the URL's sha256). Any
    other pairing (say Scenario stored our inline image as an asset and echoes
    its id) proves nothing either way.
    """
    if not (isinstance(echoed, str) and isinstance(sent, str)):
        return None
    echoed, sent = echoed.strip(), sent.strip()
    if sent.startswith("data:"):
        if echoed.startswith("data:"):
            return echoed == sent
        marker = _DATA_URL_MARKER.match(echoed)
        if marker is None:
            return None
        return hashlib.sha256(sent.encode("utf-8")).hexdigest().startswith(marker.group(1))
    if echoed.startswith("data:") or _DATA_URL_MARKER.match(echoed) or echoed.startswith("<"):
        return None
    return echoed == sent


def input_matches(job: Job, endpoint: str, body: Mapping[str, Any]) -> bool:
    """Does ``job``'s request echo describe the request ``body`` we sent to ``endpoint``?

    Prompt, model and seed must be echoed and equal. Every other field is
    compared when both sides state it (the real echo's shape is only partly
    documented): modality, sample count, endpoint type, control/init image,
    size, strength, guidance, steps, negative prompt and scheduler. Two runs
    that differ only in their control map or size must never be confused.
    """
    echo = job.input
    if not echo:
        return False
    custom = endpoint == spec.CUSTOM_ENDPOINT
    if custom:
        return _custom_input_matches(echo, body)
    if not _same_text(echo.get("prompt"), body["prompt"]):
        return False
    if (not custom or "modelId" in echo) and not _same_text(echo.get("modelId"), body["modelId"]):
        return False
    if "seed" not in echo or not _same_int(echo.get("seed"), body["seed"]):
        return False
    if "modality" in echo and not _same_modality(echo.get("modality"), body["modality"]):
        return False
    if "numSamples" in echo and not _same_int(echo.get("numSamples"), body.get("numSamples", 1)):
        return False
    if custom and not _custom_fields_match(echo, body):
        return False
    kind = echo.get("type")
    if isinstance(kind, str) and kind.replace("_", "-").lower() not in (endpoint, endpoint.replace("-", "")):
        return False
    for name in _IMAGE_FIELDS:
        if echo.get(name) is not None and body.get(name) is not None:
            if _image_verdict(echo[name], body[name]) is False:
                return False
    for name in _NUMBER_FIELDS:
        if echo.get(name) is not None and body.get(name) is not None and not _same_number(echo[name], body[name]):
            return False
    if echo.get("negativePrompt") is not None and body.get("negativePrompt") is not None:
        if not _same_text(echo["negativePrompt"], body["negativePrompt"]):
            return False
    if echo.get("scheduler") is not None and body.get("scheduler") is not None:
        if not _same_scheduler(echo["scheduler"], body["scheduler"]):
            return False
    return True


def _same_value(echoed: Any, sent: Any) -> bool:
    """One custom input: images by :func:`_image_verdict`, numbers by value, lists item by item, text exactly."""
    if isinstance(sent, (list, tuple)):
        return (
            isinstance(echoed, (list, tuple))
            and len(echoed) == len(sent)
            and all(_same_value(e, s) for e, s in zip(echoed, sent, strict=True))
        )
    if isinstance(sent, str) and (sent.startswith("data:") or spec.ASSET_ID_RE.match(sent)):
        return _image_verdict(echoed, sent) is not False
    if isinstance(sent, bool) or isinstance(echoed, bool):
        return echoed is sent
    if isinstance(sent, (int, float)):
        return _same_number(echoed, sent)
    if isinstance(sent, str):
        return _same_text(echoed, sent)
    return echoed == sent


def _custom_input_matches(echo: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    """A custom job's echo matches only when it states every input we sent, with the same value.

    The body's names are the model's own (``prompt`` or ``text``, ``numOutputs`` or
    ``numImages``...), so no name is assumed; an echo that leaves an input out
    proves nothing and is not adopted (the caller then reports the outcome as
    unknown instead of risking a job that is not ours).
    """
    kind = echo.get("type")
    if isinstance(kind, str) and kind.lower() != spec.CUSTOM_ENDPOINT:
        return False
    for key, sent in body.items():
        if key not in echo or not _same_value(echo[key], sent):
            return False
    return True


def _custom_fields_match(echo: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    """The custom path's own names (``controlModality``, ``numOutputs``, …), compared when both sides state them."""
    if echo.get("controlModality") is not None and body.get("controlModality") is not None:
        if not _same_text(str(echo["controlModality"]).lower(), str(body["controlModality"]).lower()):
            return False
    if "numOutputs" in echo and not _same_int(echo.get("numOutputs"), body.get("numOutputs", 1)):
        return False
    for name in _CUSTOM_NUMBER_FIELDS:
        if echo.get(name) is not None and body.get(name) is not None and not _same_number(echo[name], body[name]):
            return False
    return True


def created_since(job: Job, since: datetime) -> bool:
    """Was ``job`` created at or after ``since`` (both in the server's clock)? False when its date is unreadable."""
    text = job.created_at
    if not isinstance(text, str) or not text.strip() or len(text) > 64:
        return False
    try:
        created = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created >= since


def sent_at(wire: WireState) -> float:
    """Wall-clock time of the paid request's last send (now, if it never left)."""
    return wire.last_send if wire.last_send is not None else time.time()


def _short_prompt(body: Mapping[str, Any]) -> str:
    prompt = str(body.get("prompt", ""))
    return prompt if len(prompt) <= 60 else prompt[:57] + "..."


class Search:
    """What a job lookup after an ambiguous submit found (filled in as the lookup goes)."""

    __slots__ = ("job", "candidates", "lookup_error", "lookups")

    def __init__(self) -> None:
        self.job: Job | None = None
        self.candidates: list[str] = []  # set when several unclaimed jobs matched
        self.lookup_error: ScenarioError | None = None
        self.lookups = 0


ListJobs = Callable[..., Awaitable[list[Job]]]
CancelJob = Callable[..., Awaitable[Any]]


class Reconciler:
    """Job lookups for one client: ``list_jobs`` and ``cancel_job`` are the client's own operations.

    ``clock_offset()`` is the server clock minus ours (seconds, from the last
    ``Date`` header); ``skew`` widens the lookup window before the send.
    """

    def __init__(
        self,
        *,
        list_jobs: ListJobs,
        cancel_job: CancelJob,
        clock_offset: Callable[[], float],
        attempts: int,
        interval: float,
        skew: float,
        cancel_timeout: float,
        intents: Intents,
    ) -> None:
        self.intents = intents
        self._list_jobs = list_jobs
        self._cancel_job = cancel_job
        self._clock_offset = clock_offset
        self.attempts = max(1, attempts)
        self.interval = interval
        self.skew = skew
        self.cancel_timeout = cancel_timeout

    def server_time(self, local: float) -> datetime:
        """A local wall-clock instant expressed in the server's clock (``Date`` offset, else ours)."""
        return datetime.fromtimestamp(local + self._clock_offset(), UTC)

    async def look_for_job(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        sent: float,
        *,
        attempts: int,
        interval: float,
        found: Search | None = None,
        ticket: Ticket | None = None,
    ) -> Search:
        """Look for the one unclaimed job matching ``body`` created since the send; claim it for ``ticket``.

        Only jobs created after the send (server clock) minus ``skew`` count:
        the window is asked for with ``createdAfter`` and checked again on each
        job's own ``createdAt`` (a server may ignore the filter; a job without a
        readable date is never adopted). Jobs held by another run, in this
        process or (through the ledger) in another one, are skipped. With
        several matches none is picked: the next try may see one of them
        claimed by its rightful owner; after the last try ``candidates`` lists
        them. ``found`` (optional) is filled in place, so a caller that stops
        waiting still knows what was seen.
        """
        found = found if found is not None else Search()
        ticket = ticket if ticket is not None else Ticket(kind="submit", fingerprint="")
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(interval)
            since = self.server_time(sent - self.skew)
            try:
                jobs = await self._list_jobs(created_after=since, page_size=MAX_PAGE_SIZE)
            except ScenarioError as exc:
                found.lookup_error = exc
                LOG.warning("job lookup after an ambiguous submit failed: %s", type(exc).__name__)
                continue
            finally:
                found.lookups += 1
            found.lookup_error = None
            matches: dict[str, Job] = {}
            for job in jobs:
                if not job.job_id or self.intents.is_claimed(job.job_id):
                    continue
                if created_since(job, since) and input_matches(job, endpoint, body):
                    matches.setdefault(job.job_id, job)
            for job_id in await self.intents.claimed_elsewhere(matches):
                matches.pop(job_id, None)
            if len(matches) == 1:
                job = next(iter(matches.values()))
                if await self.intents.claim(ticket, job.job_id, adopted=True, cost=job.cost):
                    found.job, found.candidates = job, []
                    return found
                matches = {}
            found.candidates = list(matches) if len(matches) > 1 else []
            if found.candidates:
                LOG.warning(
                    "%d unclaimed jobs match the ambiguous submit (%s); not picking one",
                    len(found.candidates),
                    ", ".join(found.candidates),
                )
        return found

    async def adopt(
        self,
        request: ControlNetRequest,
        endpoint: str,
        body: Mapping[str, Any],
        sent: float,
        cause: str,
        ticket: Ticket | None = None,
    ) -> Submission:
        """Find the job an ambiguous submit may have created, or raise OutcomeUnknownError.

        The ticket's ledger intent ends ``accepted`` (adopted) or ``uncertain``
        with the candidates, the send time and the cause.
        """
        ticket = ticket if ticket is not None else Ticket(kind="submit", fingerprint="")
        found = await self.look_for_job(
            endpoint, body, sent, attempts=self.attempts, interval=self.interval, ticket=ticket
        )
        if found.job is not None:
            LOG.info("adopted job %s after an ambiguous submit (%s)", found.job.job_id, cause)
            return Submission(job=found.job, creative_units=found.job.cost, adopted=True, request=request)
        since_text = iso_utc(self.server_time(sent))
        prompt = _short_prompt(body)
        await self.intents.uncertain(ticket, f"sent at {since_text}: {cause}", found.candidates)
        if found.candidates:
            ids = ", ".join(found.candidates)
            raise OutcomeUnknownError(
                f"Scenario: it is unknown which job the generation request sent at {since_text} created: {cause}. "
                f"{len(found.candidates)} recent jobs match it exactly and none belongs to another run in this "
                f"process: {ids}. None was adopted and nothing was resubmitted, so you were not charged twice. "
                f"Recover the results with Poll Job (or 'python -m scenario_api fetch <job id>') on those ids "
                f"(prompt {prompt!r}, seed {body['seed']}) instead of running again",
                since=since_text,
            )
        lookup = f" (the job list could not be read: {found.lookup_error.message})" if found.lookup_error else ""
        raise OutcomeUnknownError(
            f"Scenario: it is unknown whether the generation request sent at {since_text} created a job: "
            f"{cause}. No matching job was found among recent jobs{lookup}. Nothing was resubmitted, so you were "
            f"not charged twice. Before running again, check your recent jobs in the Scenario app or with Poll Job "
            f"(or 'python -m scenario_api jobs') for prompt {prompt!r} with seed {body['seed']}",
            since=since_text,
        )

    async def recover_cancelled_submit(
        self, endpoint: str, body: Mapping[str, Any], sent: float, ticket: Ticket | None = None
    ) -> None:
        """The submit's task was cancelled after the paid request may have landed: find and cancel the job.

        A ticket that already holds a job (its reply named it, or it was
        adopted, before the cancellation landed) skips the search. The work
        runs in its own task (:func:`finish_shielded`): a second (third...)
        cancellation of the caller while it runs is held back, so it finishes
        within :data:`CANCEL_RECOVERY_SECONDS`; if it cannot, what the user must
        check is logged (send time, prompt, seed, candidate job ids). Never
        raises; the caller re-raises its ``CancelledError``.
        """
        found = Search()
        ticket = ticket if ticket is not None else Ticket(kind="submit", fingerprint="")
        outcome = await finish_shielded(
            self._recover(endpoint, body, sent, found, ticket), bound=CANCEL_RECOVERY_SECONDS
        )
        if outcome.absorbed:
            LOG.warning(
                "Scenario: %d further cancellation(s) arrived while a cancelled submit was looking for its job; "
                "the lookup was allowed to finish first",
                outcome.absorbed,
            )
        if outcome.ok:
            return
        why = "did not finish in time" if outcome.timed_out else f"failed ({type(outcome.error).__name__})"
        held = ticket.job_id or (found.job.job_id if found.job is not None else None)
        candidates = [held] if held is not None else list(found.candidates)
        LOG.warning(
            "Scenario: the search for the job of a cancelled generation request %s. It may have been created and "
            "charged. Check your recent jobs in the Scenario app or with Poll Job for: sent at %s, prompt %r, "
            "seed %s, candidate job ids: %s",
            why,
            iso_utc(self.server_time(sent)),
            _short_prompt(body),
            body.get("seed"),
            ", ".join(candidates) or "none found yet",
        )

    async def _cancel_recovered(self, job_id: str, ticket: Ticket, left: float) -> None:
        """Cancel the job a cancelled submit holds (within ``left`` seconds) and record it, unless it was taken back."""
        if not await self.intents.owns(ticket, job_id):
            LOG.warning("job %s was taken back by the run whose own reply named it; it was not cancelled", job_id)
            return
        LOG.warning("Scenario job %s was created while the caller was being cancelled; cancelling it", job_id)
        try:
            await asyncio.wait_for(
                self._cancel_job(job_id, best_effort=True, timeout=min(self.cancel_timeout, left)), left
            )
        except Exception as exc:  # noqa: BLE001 - best effort
            LOG.warning("best-effort cancel of job %s incomplete (%s)", job_id, type(exc).__name__)
        await self.intents.finished(job_id, "canceled", reason="the caller was cancelled; a cancel was sent")

    async def _recover(
        self, endpoint: str, body: Mapping[str, Any], sent: float, found: Search, ticket: Ticket
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCEL_RECOVERY_SECONDS
        since_text = iso_utc(self.server_time(sent))
        if ticket.job_id is None:  # no reply named the job: look for it
            try:
                await asyncio.wait_for(
                    self.look_for_job(
                        endpoint,
                        body,
                        sent,
                        attempts=self.attempts,
                        interval=min(self.interval, 1.0),
                        found=found,
                        ticket=ticket,
                    ),
                    CANCEL_RECOVERY_SECONDS - CANCEL_RECOVERY_CANCEL_SHARE,
                )
            except Exception as exc:  # noqa: BLE001 - best effort: what was found so far is reported below
                LOG.warning("job lookup after a cancelled submit did not finish (%s)", type(exc).__name__)
        job_id = ticket.job_id or (found.job.job_id if found.job is not None else None)
        if job_id is not None:
            await self._cancel_recovered(job_id, ticket, max(0.5, deadline - loop.time()))
            return
        await self.intents.uncertain(
            ticket, f"sent at {since_text}; the caller was cancelled while it was on the wire", found.candidates
        )
        if found.candidates:
            LOG.warning(
                "Scenario: a generation request sent at %s was cancelled while on the wire; several jobs match it "
                "(%s), so none was cancelled. Check them with Poll Job (prompt %r, seed %s)",
                since_text,
                ", ".join(found.candidates),
                _short_prompt(body),
                body.get("seed"),
            )
            return
        LOG.warning(
            "Scenario: a generation request sent at %s was cancelled while on the wire and no job was found for it. "
            "It may still have been created and charged: check your recent jobs for prompt %r with seed %s",
            since_text,
            _short_prompt(body),
            body.get("seed"),
        )
