"""The bookkeeping of paid requests for one client: process claims plus the durable ledger.

:class:`Intents` is what :class:`~.client.ScenarioClient` (and the upload
service) use around every paid request. It keeps the two records of who holds
which job in step:

* :data:`~.reconcile.CLAIMED_JOBS`, process-wide, in memory (always);
* the job ledger (:mod:`.ledger`), machine-wide and durable, when the client
  has one (the nodes and the CLI pass theirs; a bare library client has none).

A :class:`Ticket` is one paid request. It is written to the ledger as an
intent *before* anything is sent (:meth:`Intents.begin`), and then moved
through its states as the answers come. Ledger calls are quick but blocking
SQLite work, so they run in a worker thread, and a cancelled caller still
lets them finish (:func:`~.cancellation.finish_shielded`): a half-recorded
intent would be worse than a late cancellation.

The origin of an intent (a ComfyUI node and prompt, or the CLI) comes from the
context variable :data:`ORIGIN`, set by the caller around its run.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import itertools
import logging
import threading
import time
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from . import ledger as ledger_mod
from .cancellation import finish_shielded
from .config import Settings

if TYPE_CHECKING:  # the ledger's store loads only when a ledger is opened
    from .ledger import Ledger, Record

__all__ = ["CLAIMED_JOBS", "ClaimedJobs", "ORIGIN", "Intents", "Ticket"]

log = logging.getLogger("scenario_api.ledger")

ORIGIN: contextvars.ContextVar[str] = contextvars.ContextVar("scenario_origin", default="python")
LEDGER_BOUND = 30.0  # seconds a ledger write may take (busy timeout plus margin) before it is given up

T = TypeVar("T")
_tokens = itertools.count(1)


class ClaimedJobs:
    """Job ids already handed to a caller in this process, and who holds each.

    Process-wide on purpose: two clients (two nodes, two prompts) may send
    identical requests with the same seed, and one client's lost reply must
    not make it adopt the job the other client was given. Guarded by a
    ``threading.Lock`` (never held across an await), so clients in different
    event loops or threads share it safely. Only the newest ``limit`` ids are
    kept: an older job is far outside any reconciliation window anyway.

    A claim names its ``owner`` (a token, e.g. the submit ticket's number) and
    whether it was a guess (``adopted``: found by reconciliation after a lost
    reply) or direct (the job id came in the reply to the owner's own
    request). A direct claim takes a job back from a guesser, which then no
    longer :meth:`owns` it and must never cancel it. Across processes the same
    rule is kept by the job ledger (:mod:`.ledger`).
    """

    def __init__(self, limit: int = 50_000) -> None:
        self._ids: dict[str, tuple[object, bool]] = {}  # job id -> (owner token, adopted)
        self._lock = threading.Lock()
        self._limit = limit

    def claim(self, job_id: str, owner: Hashable | None = None, *, adopted: bool = False) -> bool:
        """Record ``job_id`` for ``owner``; True when it now holds the job.

        False when someone else holds it, unless this claim is direct and the
        holder only adopted it (then the holder is displaced). Without an
        owner, any earlier claim wins (a job merely seen, e.g. in a dry run).
        """
        token = owner
        with self._lock:
            held = self._ids.get(job_id)
            if held is not None:
                holder, holder_adopted = held
                if token is not None and holder == token:
                    return True
                if adopted or token is None or not holder_adopted:
                    return False
            self._ids[job_id] = (token, adopted)
            while len(self._ids) > self._limit:
                del self._ids[next(iter(self._ids))]
            return True

    def owns(self, job_id: str, owner: Hashable) -> bool:
        """True while ``owner`` holds ``job_id`` (check before cancelling a job)."""
        with self._lock:
            held = self._ids.get(job_id)
            return held is not None and held[0] == owner

    def __contains__(self, job_id: object) -> bool:
        with self._lock:
            return job_id in self._ids


CLAIMED_JOBS = ClaimedJobs()


@dataclass
class Ticket:
    """One paid request (a submit or an upload) as the client tracks it."""

    kind: str
    fingerprint: str
    intent_id: int | None = None  # None without a ledger, or when the ledger could not be written
    token: int = field(default_factory=lambda: next(_tokens))
    job_id: str | None = None
    adopted: bool = False
    displaced: bool = False
    prompt: str = ""
    seed: int | None = None
    begun_at: float = field(default_factory=time.time)


class Intents:
    """Claims and ledger records of one client's paid requests (see the module doc)."""

    def __init__(self, settings: Settings, ledger: Ledger | None = None) -> None:
        self.settings = settings
        self.ledger = ledger
        creds = settings.credentials
        self.account = "acct_" + creds.account_id[:24] if creds is not None else "acct_" + "0" * 24
        self._warned = False

    # -------------------------------------------------------------- plumbing

    async def _db(self, fn: Any, *args: Any, **kw: Any) -> Any:
        """Run one ledger call in a worker thread, to the end even if the caller is cancelled meanwhile.

        A broken ledger never stops paid work: its error is logged (once per
        client, at WARNING) and None is returned. A cancellation that arrived
        meanwhile is raised once the call has ended.
        """
        result, absorbed = await self._db_settled(fn, *args, **kw)
        if absorbed:
            if self.ledger is not None and fn == self.ledger.begin and isinstance(result, int):
                # cancelled while the intent was being written: nothing will be sent, say so in the ledger
                await finish_shielded(
                    asyncio.to_thread(self.ledger.mark_refused, result, "cancelled before the request was sent"),
                    bound=LEDGER_BOUND,
                )
            raise asyncio.CancelledError()
        return result

    async def _db_settled(self, fn: Any, *args: Any, **kw: Any) -> tuple[Any, bool]:
        """:meth:`_db` without the raise: ``(result, whether the caller was cancelled meanwhile)``."""
        if self.ledger is None:
            return None, False
        outcome = await finish_shielded(asyncio.to_thread(fn, *args, **kw), bound=LEDGER_BOUND)
        if outcome.error is not None or outcome.timed_out:
            error = outcome.error
            if isinstance(error, (ValueError, TypeError)):
                raise error  # a bug in the caller, not a ledger problem
            if not self._warned:
                self._warned = True
                why = error.message if isinstance(error, ledger_mod.LedgerError) else type(error).__name__
                log.warning("Scenario: the job ledger could not be updated (%s); job ids are still logged", why)
            result = None
        else:
            result = outcome.result
        return result, bool(outcome.absorbed)

    # -------------------------------------------------------------- fingerprints

    def image_hashes(self) -> dict[str, str]:
        """Asset id -> content hash of the images the upload service uploaded for this account."""
        from .uploads import UPLOADS  # local: uploads imports the client's modules

        return UPLOADS.content_hashes(self.settings)

    def fingerprint(self, kind: str, path: str, body: Mapping[str, Any]) -> str:
        return ledger_mod.fingerprint(
            kind,
            path,
            body,
            base_url=self.settings.base_url,
            account=self.account,
            project_id=self.settings.project_id,
            images=self.image_hashes(),
        )

    def upload_fingerprint(self, content_hash: str) -> str:
        """The fingerprint of uploading the image whose bytes hash to ``content_hash``."""
        return ledger_mod.fingerprint(
            ledger_mod.UPLOAD,
            "/assets",
            {"image": "sha256:" + content_hash},
            base_url=self.settings.base_url,
            account=self.account,
            project_id=self.settings.project_id,
        )

    # -------------------------------------------------------------- lifecycle

    async def begin(
        self,
        kind: str,
        path: str,
        body: Mapping[str, Any],
        *,
        prompt: str = "",
        seed: int | None = None,
        cost: float | None = None,
        fingerprint: str | None = None,
    ) -> Ticket:
        """A ticket for a paid request about to be sent; its intent is in the ledger before this returns."""
        fp = fingerprint or self.fingerprint(kind, path, body)
        ticket = Ticket(kind=kind, fingerprint=fp, prompt=prompt[:60], seed=seed)
        ticket.intent_id = await self._db(
            self.ledger.begin if self.ledger else None,
            kind=kind,
            fingerprint=fp,
            account=self.account,
            endpoint=path,
            base_url=self.settings.base_url,
            origin=ORIGIN.get(),
            prompt=prompt,
            seed=seed,
            cost=cost,
            request=body if kind == ledger_mod.SUBMIT else None,
        )
        return ticket

    async def sent(self, ticket: Ticket) -> None:
        if ticket.intent_id is not None and self.ledger is not None:
            await self._db(self.ledger.mark_sent, ticket.intent_id)

    def is_claimed(self, job_id: str) -> bool:
        """Claimed in this process (the ledger is asked with :meth:`claimed_elsewhere`)."""
        return job_id in CLAIMED_JOBS

    async def claimed_elsewhere(self, job_ids: Iterable[str]) -> set[str]:
        """Which of ``job_ids`` an intent of another process (or client) holds, per the ledger."""
        ids = [j for j in job_ids if j]
        if self.ledger is None or not ids:
            return set()
        found = await self._db(self.ledger.claimed, ids)
        return set(found or ())

    async def claim(self, ticket: Ticket, job_id: str, *, adopted: bool, cost: float | None = None) -> bool:
        """Take ``job_id`` for ``ticket`` in the process and in the ledger; True when it won both.

        A direct claim (the reply to this request named the job) wins against
        a guess made elsewhere; an adopted claim never takes a job held by
        anyone. When the ledger refuses after the process accepted, the
        process claim is kept only for a direct one (the reply is proof).

        A cancellation during the ledger write is raised after it, with
        ``ticket.job_id`` already naming the job when the ticket holds it: the
        cancelled submit then cancels that job instead of dropping it.
        """
        if not CLAIMED_JOBS.claim(job_id, ticket.token, adopted=adopted):
            return False
        won, cancelled = True, False
        if ticket.intent_id is not None and self.ledger is not None:
            result, cancelled = await self._db_settled(
                self.ledger.claim, ticket.intent_id, job_id, adopted=adopted, cost=cost
            )
            if result is not None and not result.won:
                if adopted:
                    won = False
                else:
                    log.error(
                        "Scenario: job %s is recorded for another intent (%s) although this request's reply named it",
                        job_id,
                        result.holder,
                    )
        if won:
            ticket.job_id, ticket.adopted = job_id, adopted
        if cancelled:
            raise asyncio.CancelledError()
        return won

    async def owns(self, ticket: Ticket, job_id: str) -> bool:
        """Does ``ticket`` still hold ``job_id``? False once a direct claim elsewhere took it back."""
        if not CLAIMED_JOBS.owns(job_id, ticket.token):
            ticket.displaced = True
            return False
        if ticket.intent_id is not None and self.ledger is not None and ticket.adopted:
            owned = await self._db(self.ledger.owns, ticket.intent_id, job_id)
            if owned is False:
                ticket.displaced = True
                return False
        return True

    async def uncertain(self, ticket: Ticket, reason: str, candidates: Iterable[str] = ()) -> None:
        if ticket.intent_id is not None and self.ledger is not None:
            await self._db(self.ledger.mark_uncertain, ticket.intent_id, reason, list(candidates))

    async def refused(self, ticket: Ticket, reason: str) -> None:
        if ticket.intent_id is not None and self.ledger is not None:
            await self._db(self.ledger.mark_refused, ticket.intent_id, reason)

    async def uploaded(self, ticket: Ticket, asset_id: str) -> None:
        if ticket.intent_id is not None and self.ledger is not None:
            await self._db(self.ledger.mark_upload, ticket.intent_id, asset_id)

    async def finished(
        self, job_id: str, state: str, *, asset_ids: Iterable[str] = (), reason: str | None = None
    ) -> None:
        """Record a job's end on the intent holding it (any process), if the ledger has one."""
        if self.ledger is None:
            return
        record = await self._db(self.ledger.by_job, job_id)
        if record is None or record.state == state:
            return
        try:
            await self._db(self.ledger.finish, record.id, state, asset_ids=list(asset_ids), reason=reason)
        except ValueError:
            pass

    async def receipt(self, job_id: str | None, asset_id: str, data: bytes, path: str | None = None) -> None:
        if self.ledger is None or not job_id:
            return
        record = await self._db(self.ledger.by_job, job_id)
        if record is not None:
            digest = hashlib.sha256(data).hexdigest()
            await self._db(self.ledger.add_receipt, record.id, asset_id, digest, len(data), path)

    # -------------------------------------------------------------- reuse

    async def resumable(self, fingerprint: str) -> list[Record]:
        """Unfinished intents of dead processes with this fingerprint (see :meth:`Ledger.find_resumable`)."""
        if self.ledger is None:
            return []
        return list(await self._db(self.ledger.find_resumable, fingerprint, self.account) or ())

    def take_over(self, record: Record) -> Ticket:
        """A ticket for an intent a dead process left, so this client can finish it."""
        ticket = Ticket(kind=record.kind, fingerprint=record.fingerprint, intent_id=record.id)
        if record.job_id:
            CLAIMED_JOBS.claim(record.job_id, ticket.token)
            ticket.job_id = record.job_id
        return ticket

    async def reusable(self, fingerprint: str, *, kind: str, exclude: Iterable[int] = ()) -> Record | None:
        if self.ledger is None:
            return None
        return await self._db(self.ledger.find_reusable, fingerprint, self.account, kind=kind, exclude=list(exclude))
