"""``ScenarioClient``: the Scenario ControlNet operations, async, one per event loop.

The rules that shape this module (and the three it delegates to):

1. **Never pay twice.** A paid request (a submit, or an upload) is resent only
   when it provably never reached Scenario (connect failure) or Scenario
   refused it (429/503); see :mod:`.transport`. After any ambiguous failure of
   a submit the client looks for the job it may have created and adopts it, or
   raises :class:`OutcomeUnknownError` telling the user what to look for
   (:mod:`.reconcile`). Always sending our own seed makes the match reliable.
   An ambiguous upload raises :class:`OutcomeUnknownError` at once.
2. **Validate before spending.** Every request is checked with
   :func:`spec.check_request` (the model's rules) before the paid call. Rules
   that no model family accepts (:func:`spec.precheck_request`) are reported
   before *any* request; family-specific rules after the free model lookup.
   A price quote never uploads anything.
3. **One way to stop: task cancellation.** The client has no stop callbacks.
   A cancelled wait sends one shielded, best-effort remote cancel; a cancelled
   submit whose request may be on the wire finds the job, logs it and cancels
   it (:meth:`.reconcile.Reconciler.recover_cancelled_submit`), and further
   cancellations cannot cut that short (:mod:`.cancellation`). The
   ``CancelledError`` always goes on.
4. **Public methods raise** :class:`ScenarioError` subclasses (or
   ``CancelledError``), nothing else.

Jobs are followed by the one watching loop (:mod:`.watch`); images are
uploaded through the one upload service (:mod:`.uploads`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import json
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from . import spec
from .cancellation import finish_shielded
from .config import Settings
from .declared_inputs import RecordCache
from .downloads import DEFAULT_MAX_BYTES, Downloader, HostPolicy
from .errors import (
    AmbiguousOutcome,
    DownloadError,
    ExpiredURLError,
    ImageDecodeError,
    JobCanceledError,
    JobFailedError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ScenarioError,
    ServerError,
    TransientDownloadError,
    TransportError,
    TruncatedDownloadError,
    ValidationError,
)
from .imaging import content_hash as imaging_hash
from .imaging import from_data_url, sniff_mime, to_data_url
from .intents import Intents, Ticket
from .ledger import SUBMIT, UPLOAD, Ledger, Record
from .limits import CUSTOM, INFERENCE, AccountLimiter, Slot, limiter_for
from .models import Asset, ControlNetRequest, Job, JobStatus, Model, Quote, Submission
from .pacing import EtaSchedule, PollPolicy
from .reconcile import CLAIMED_JOBS, MAX_PAGE_SIZE, Reconciler, iso_utc, sent_at
from .retry import RetryPolicy
from .spec import precheck_request
from .transport import (
    DEFAULT_TIMEOUT,
    LOG,
    Redacted,
    Transport,
    WireState,
    api_error,
    decode_body,
    shared_ssl_context,
)
from .uploads import UPLOADS
from .watch import Limits, NextDelay, OnUpdate, fixed_interval, watch_job

__all__ = ["ScenarioClient", "INLINE_IMAGE_LIMIT", "precheck_request"]

# Largest data URL sent inline in a request body; bigger images are uploaded as
# assets and referenced by id (Scenario documents no body limit; keep bodies small).
INLINE_IMAGE_LIMIT = 2 * 1024 * 1024

DRY_RUN_STATUS = 269
# Custom models' records (their declared inputs), shared by every client of the process for
# CUSTOM_RECORDS_TTL seconds: a new ComfyUI prompt does not look the model up again. Keyed by
# account, so private models stay with their owner; a plain lock, no event loop inside.
CUSTOM_RECORDS_TTL = 600.0
CUSTOM_RECORDS = RecordCache(ttl=CUSTOM_RECORDS_TTL)

ProgressCallback = OnUpdate


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


class ScenarioClient:
    """Async client for Scenario's ControlNet API.

    Create one per event loop and use it as ``async with ScenarioClient(settings)
    as client``. The connection pools are created lazily in the running loop;
    using the client from another loop raises ``RuntimeError``.

    Parameters tune timing; the defaults suit the real API. Tests pass
    ``retry=RetryPolicy.fast()`` and short intervals. ``reconcile_skew`` is how
    many seconds before the send (in the server's clock) the job lookup after
    an ambiguous submit starts: it absorbs the ``Date`` header's one-second
    resolution and request latency.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        submit_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        paid_retry: RetryPolicy | None = None,
        poll_interval: float | None = None,
        poll_policy: PollPolicy | None = None,
        slot_wait: float = 900.0,
        cancel_timeout: float = 5.0,
        reconcile_attempts: int = 4,
        reconcile_interval: float = 2.0,
        reconcile_skew: float = 5.0,
        max_poll_failures: int = 3,
        max_download_bytes: int = DEFAULT_MAX_BYTES,
        download_attempts: int = 3,
        download_timeout: httpx.Timeout | float | None = None,
        ledger: Ledger | None = None,
        reuse: bool = False,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self._transport = Transport(self.settings, timeout=timeout)  # raises ConfigurationError without a key
        self.retry = retry or RetryPolicy()
        self.paid_retry = paid_retry or self.retry
        self.submit_timeout = submit_timeout
        self.poll_interval = poll_interval  # None: the ETA-aware schedule (pacing.EtaSchedule)
        self.poll_policy = poll_policy or PollPolicy()
        self.cancel_timeout = cancel_timeout
        self.reconcile_attempts = max(1, reconcile_attempts)
        self.reconcile_interval = reconcile_interval
        self.reconcile_skew = reconcile_skew
        self.max_poll_failures = max(1, max_poll_failures)
        self.download_attempts = max(1, download_attempts)
        policy = HostPolicy(self.settings.download_hosts, api_host=self.settings.api_host)
        kwargs: dict[str, Any] = {"max_bytes": max_download_bytes}
        if download_timeout is not None:
            kwargs["timeout"] = download_timeout
        self._downloader = Downloader(policy, **kwargs)
        self._models: dict[str, Model] = {}
        self.ledger = ledger
        self.reuse = bool(reuse and ledger is not None)
        self._intents = Intents(self.settings, ledger)
        self._tickets: dict[str, Ticket] = {}  # job id -> the ticket of this client's submit that holds it
        self._served: set[int] = set()  # ledger intents whose results this client already served again
        self._asset_jobs: dict[str, str] = {}  # asset id -> job id, for download receipts
        self._model_lookups: dict[str, list[Any]] = {}  # model id -> [shared look-up task, callers waiting]
        self._submitted: dict[str, tuple[float, str | None]] = {}  # job id -> (local time of the answer, createdAt)
        self._slots: dict[str, Slot] = {}  # job id -> its parallel-job slot, held until the job is followed to its end
        self.slot_wait = slot_wait
        weakref.finalize(self, _give_back_all, self._slots)  # a client dropped unclosed never keeps slots
        self._limits_probe: asyncio.Lock | None = None
        self._reconciler = Reconciler(
            intents=self._intents,
            list_jobs=self.list_jobs,
            cancel_job=self.cancel_job,
            clock_offset=lambda: self._transport.clock_offset,
            attempts=self.reconcile_attempts,
            interval=self.reconcile_interval,
            skew=self.reconcile_skew,
            cancel_timeout=self.cancel_timeout,
        )

    def __repr__(self) -> str:
        creds = self.settings.credentials
        return f"ScenarioClient(base_url={self.settings.base_url!r}, key={creds.key_hint if creds else None!r})"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ScenarioClient:
        await asyncio.to_thread(shared_ssl_context)  # the CA bundle loads once, off the event loop
        self._transport.bind()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close both connection pools (API and downloads). Safe to call twice."""
        for job_id in list(self._slots):
            self._release_slot(job_id)
        try:
            await self._transport.aclose()
        finally:
            await self._downloader.aclose()

    # ------------------------------------------------------------------ parallel-job limits

    @property
    def account(self) -> str:
        """A stable, secret-free key of the account: API base URL and the key's id."""
        creds = self.settings.credentials
        return f"{self.settings.base_url}|{creds.account_id if creds else ''}"

    def limiter(self, kind: str = INFERENCE) -> AccountLimiter:
        """This account's process-wide limiter of parallel jobs (``INFERENCE`` or ``CUSTOM``)."""
        return limiter_for(self.account, kind)

    async def team_limits(self) -> Mapping[str, Any] | None:
        """``GET /teams/{teamId}/limits`` (``settings.team_id``, else ``me``): the ``limits`` object, or None.

        None when the key may not read it (403), the route or team is unknown
        (404/400), or the network fails: the limits are then learned from the
        first 429's ``details.actionLimit``.
        """
        team = self.settings.team_id or "me"
        try:
            response = await self._transport.read(
                "GET", f"/teams/{spec.check_id('projectId', team)}/limits", what="the team limits", policy=self.retry
            )
        except (ScenarioError, ValidationError) as exc:
            LOG.info("team limits not readable (%s); parallel limits will be learned from 429 answers", exc)
            return None
        data = decode_body(response)
        limits = data.get("limits") if isinstance(data, Mapping) else None
        return limits if isinstance(limits, Mapping) else None

    async def _learn_team_limits(self) -> None:
        """Read the team limits once per account and process (concurrent submits of this client wait for it)."""
        inference = self.limiter(INFERENCE)
        if inference.probed:
            return
        if self._limits_probe is None:
            self._limits_probe = asyncio.Lock()
        async with self._limits_probe:
            if inference.probed:
                return
            limits = await self.team_limits()
            inference.probed = True
            if limits:
                inference.learn(_positive_int(limits.get("parallelInferences")), "team limits")
                self.limiter(CUSTOM).learn(_positive_int(limits.get("parallelCustomJobs")), "team limits")

    def _release_slot(self, job_id: str) -> None:
        slot = self._slots.pop(job_id, None)
        if slot is not None:
            slot.give_back()

    # ------------------------------------------------------------------ models

    async def get_model(self, model_id: str) -> Model:
        """The model record (cached per client), which decides the request rules."""
        model_id = spec.check_id("modelId", model_id)
        cached = self._models.get(model_id) or CUSTOM_RECORDS.get(self._scope, model_id)
        if cached is not None:
            self._models[model_id] = cached
            return cached
        entry = self._model_lookups.get(model_id)
        if entry is None or entry[0].done():  # nobody asks yet: start the one look-up the others will share
            entry = [asyncio.ensure_future(self._lookup_model(model_id)), 0]
            self._model_lookups[model_id] = entry
        lookup = entry[0]
        entry[1] += 1
        try:
            return await asyncio.shield(lookup)  # one caller's cancellation never cancels the others' look-up
        finally:
            entry[1] -= 1
            if entry[1] == 0:  # the last one waiting: drop the look-up (cancel it if it still runs)
                if self._model_lookups.get(model_id) is entry:
                    del self._model_lookups[model_id]
                if not lookup.done():
                    lookup.cancel()
                elif not lookup.cancelled():
                    lookup.exception()  # retrieved: each caller re-raises it itself

    async def _lookup_model(self, model_id: str) -> Model:
        response = await self._transport.read(
            "GET", f"/models/{model_id}", what=f"model '{model_id}'", policy=self.retry
        )
        model = Model.from_api(decode_body(response))
        if not model.model_id:
            raise ScenarioError(f"Scenario answered the lookup of model '{model_id}' without a model record")
        self._models[model_id] = model
        if model.custom and model.declared.inputs:
            CUSTOM_RECORDS.put(self._scope, model_id, model)  # declared inputs: shared by later clients
        return model

    @property
    def _scope(self) -> str:
        """Whose models these are: the API URL, a digest of the key (never the secret) and the project."""
        creds = self.settings.credentials
        key = creds.key_digest if creds else ""
        digest = hashlib.sha256(f"{self.settings.base_url}|{key}|{self.settings.project_id or ''}".encode())
        return digest.hexdigest()[:24]

    async def model_types(self, model_ids: Sequence[str]) -> dict[str, str | None]:
        """The ``type`` of each model id (LoRAs, compositions), ``None`` for one Scenario does not know (404)."""
        out: dict[str, str | None] = {}
        for mid in dict.fromkeys(model_ids):
            spec.check_id("modelId", mid, field="loras")
            try:
                out[mid] = (await self.get_model(mid)).type or None
            except NotFoundError:
                out[mid] = None
        return out

    async def referenced_types(self, request: ControlNetRequest, model: Model) -> dict[str, str | None]:
        """The types of the LoRAs a request names (free reads), for a custom model; ``{}`` otherwise.

        A LoRA given as ``model_id`` whose type has no legacy endpoint (say a
        ``zimage-lora``) is refused here: it runs through a base's LoRA input.
        """
        if model.family == spec.CUSTOM and not model.custom and model.is_lora:
            raise ValidationError(
                "modelId",
                model.model_id,
                f"a base model: {model.model_id} is a {model.type}, which runs through a custom base model's LoRA "
                f"input; set model_id to a base whose LoRA input takes {model.type} and put {model.model_id} in loras",
                param="model_id",
            )
        if model.family != spec.CUSTOM:
            return {}
        return await self.model_types(spec.lora_ids(request))

    async def list_models(
        self,
        *,
        max_pages: int = 10,
        privacy: str | None = None,
        model_type: str | None = None,
        page_size: int | None = None,
    ) -> list[Model]:
        """Models visible to the key, across pages (up to ``max_pages``).

        ``privacy`` ``None`` asks Scenario's default: the account's own private models;
        ``public`` lists the public catalog. ``model_type`` filters on ``type``.
        """
        params: dict[str, Any] = {}
        if privacy:
            params["privacy"] = privacy
        if model_type:
            params["type"] = model_type
        if page_size:
            params["pageSize"] = page_size
        rows = await self._paged("/models", "models", params, max_pages=max_pages, what="the model list")
        return [Model.from_api(row) for row in rows]

    # ------------------------------------------------------------------ requests

    async def validate(self, request: ControlNetRequest) -> dict[str, Any]:
        """Check ``request`` with the strict rules and return the wire body it would send.

        Only the free model lookup may go over the network (and nothing at all
        for problems no model family accepts). Raises :class:`ValidationError`.
        """
        return (await self._prepare(request))[1]

    async def _prepare(self, request: ControlNetRequest, *, upload: bool = False) -> tuple[Model, dict[str, Any]]:
        """The model and the validated wire body for ``request``.

        A custom model (``custom: true``) gets the ``/generate/custom/{id}``
        body; with ``upload`` its data URLs are uploaded (after validation, so
        an invalid request uploads nothing) and replaced by asset ids.
        """
        if not isinstance(request, ControlNetRequest):
            raise ValidationError("request", type(request).__name__, "a ControlNetRequest")
        spec.check_id("modelId", request.model_id)
        precheck_request(request)
        model = await self.get_model(request.model_id)
        types = await self.referenced_types(request, model)
        body = spec.check_request(request, model, model_types=types)
        if model.family == spec.CUSTOM:
            return model, await self._custom_body(model, body, upload=upload)
        return model, body

    async def _custom_body(self, model: Model, checked: dict[str, Any], *, upload: bool) -> dict[str, Any]:
        """The checked custom body (:func:`spec.check_request`), with its data URLs uploaded when ``upload``.

        The image inputs are the model's own (one asset id, or a list for a
        ``file_array`` input such as Z-Image's ``controlImage``).
        """
        if not upload:
            return checked
        control = model.declared.role("control_image")
        for field in spec.custom_file_inputs(model):
            value = checked.get(field)
            items = value if isinstance(value, list) else [value]
            if not any(isinstance(v, str) and v.startswith("data:") for v in items):
                continue
            name = "comfyui-control.png" if control is not None and field == control.name else "comfyui-init.png"
            done = [
                await UPLOADS.asset_id(self, from_data_url(v)[0], name)
                if isinstance(v, str) and v.startswith("data:")
                else v
                for v in items
            ]
            checked[field] = done if isinstance(value, list) else done[0]
        return checked

    @staticmethod
    def _route(request: ControlNetRequest, model: Model, body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """``(endpoint, path, match body)``: where ``body`` goes and what reconciliation compares.

        The custom body carries the model id in the path; the match body adds
        it so a job's echo can be checked against it (a LoRA or composition
        sent in the model's own ``modelId`` input wins over it).
        """
        if model.family == spec.CUSTOM:
            return spec.CUSTOM_ENDPOINT, spec.custom_path(model.model_id), {"modelId": model.model_id, **body}
        return request.endpoint, spec.endpoint_path(request.endpoint), dict(body)

    async def quote(self, request: ControlNetRequest) -> Quote:
        """The price of ``request`` in creative units (a dry run: nothing is generated, charged or uploaded).

        The image inputs do not change the price. A legacy-model quote sends
        the data URL or asset id the request already holds; a custom-model
        quote sends the body without its image inputs (Scenario prices such a
        body on the custom path), so no image is ever uploaded for a quote.
        """
        model, body = await self._prepare(request, upload=False)
        if model.family == spec.CUSTOM:
            unpriced = set(spec.custom_unpriced_inputs(model))
            body = {k: v for k, v in body.items() if k not in unpriced}
        _, path, _ = self._route(request, model, body)
        response = await self._transport.read(
            "POST", path, what="the price quote", policy=self.retry, params={"dryRun": "true"}, json=body
        )
        data = decode_body(response)
        if not isinstance(data, Mapping):
            raise ScenarioError(f"Scenario answered the price quote with HTTP {response.status_code} but no JSON")
        job = data.get("job")
        if isinstance(job, Mapping) and (job.get("jobId") or job.get("id")):
            created = Job.from_api(data)
            CLAIMED_JOBS.claim(created.job_id)
            LOG.warning("Scenario created job %s for a price quote (dry run); cancelling it", created.job_id)
            await self._cancel_shielded(created.job_id)
            raise ScenarioError(
                "Scenario created a job for what was sent as a price quote (dry run); a cancel was sent for it, "
                "but it may be charged",
                job_id=created.job_id,
            )
        return Quote.from_api(data)  # raises ScenarioError when the answer carries no usable cost

    async def submit(
        self,
        request: ControlNetRequest,
        *,
        on_wait: Callable[[float, str], Awaitable[None] | None] | None = None,
    ) -> Submission:
        """Start a paid generation and return its job (see :meth:`_submit`), within the account's parallel limit.

        A slot of the account's limiter (``scenario_api.limits``) is taken
        first: above the limit the submit waits here, politely, instead of
        being refused. The slot is held until :meth:`wait_for_job` sees the job
        end. A 429 teaches the limit (``details.actionLimit``); when this
        process is over it, the slot is given back and taken again before the
        resend.
        """
        held: list[Slot | None] = [None]

        async def take_slot(model: Model) -> None:
            """Called by :meth:`_submit` once the request is valid, before anything is paid."""
            limiter = self.limiter(CUSTOM if model.custom else INFERENCE)
            await self._learn_team_limits()
            if limiter.limit is not None and limiter.active >= limiter.limit:
                await _notify_wait(on_wait, 0.0, "waiting for a free Scenario slot")
            held[0] = await _take(limiter, self.slot_wait)

            async def before_retry(response: httpx.Response) -> bool:
                if response.status_code != 429:
                    return False
                limiter.learn(_action_limit(response), "429")
                if limiter.limit is None or limiter.active <= limiter.limit:
                    return False  # the slots are taken elsewhere (another program, the web app): wait as told
                if held[0] is not None:
                    held[0].give_back()
                await _notify_wait(on_wait, 0.0, "waiting for a free Scenario slot")
                held[0] = await _take(limiter, self.slot_wait)
                return True

            retry_hook[0] = before_retry

        retry_hook: list[Callable[[httpx.Response], Awaitable[bool]] | None] = [None]

        async def before_retry(response: httpx.Response) -> bool:
            return await retry_hook[0](response) if retry_hook[0] is not None else False

        try:
            sub = await self._submit(request, on_wait=on_wait, before_retry=before_retry, take_slot=take_slot)
        except BaseException:
            if held[0] is not None:
                held[0].give_back()  # no job (or one recovered and cancelled): the slot is free again
            raise
        self._follow(sub.job, held[0])
        return sub

    async def _submit(
        self,
        request: ControlNetRequest,
        *,
        on_wait: Callable[[float, str], Awaitable[None] | None] | None = None,
        before_retry: Callable[[httpx.Response], Awaitable[bool]] | None = None,
        take_slot: Callable[[Model], Awaitable[None]] | None = None,
    ) -> Submission:
        """Start a paid generation and return its job (see the module doc for the retry rules).

        ``on_wait(seconds, why)`` is called before waiting out a 429/503 or a
        connect failure, so a UI can say "waiting for a Scenario slot".
        Cancelling the task before Scenario may have accepted the request (the
        model lookup, an upload, a 429/503 wait) sends nothing more.

        If the task is cancelled while the paid request may have reached
        Scenario (or during the lookup after an ambiguous answer), the client
        looks for the job it may have created, in a task of its own that
        further cancellations do not cut short, for at most
        :data:`~.reconcile.CANCEL_RECOVERY_SECONDS`: a job found is logged at
        WARNING and sent a best-effort cancel, otherwise the send time, prompt,
        seed and candidates to check are logged. The ``CancelledError`` is
        always re-raised.
        """
        request = request.with_seed()
        model, body = await self._prepare(request, upload=True)
        endpoint, path, match = self._route(request, model, body)
        if take_slot is not None:
            await take_slot(model)  # valid: wait for a parallel-job slot before anything is paid
        fingerprint = self._intents.fingerprint(SUBMIT, path, match)
        if self.reuse:
            reused = await self._reuse(request, fingerprint, endpoint, match)
            if reused is not None:
                return reused
        what = f"the generation request ({path})"
        ticket = await self._intents.begin(
            SUBMIT, path, match, prompt=str(request.prompt or ""), seed=request.seed, fingerprint=fingerprint
        )
        wire = WireState()

        async def check_before_resend() -> None:
            # A 429/503 may come from a gateway after Scenario accepted: never resend over a job that exists.
            await self._check_before_resend(endpoint, match, wire, ticket)

        try:
            try:
                try:
                    response = await self._transport.paid(
                        "POST",
                        path,
                        what=what,
                        policy=self.paid_retry,
                        json=body,
                        timeout=self._submit_timeout(),
                        on_wait=on_wait,
                        wire=wire,
                        before_resend=check_before_resend,
                        before_retry=before_retry,
                    )
                finally:
                    if wire.first_send is not None:
                        await self._intents.sent(ticket)
            except _FoundBeforeResend as found:
                return Submission(job=found.job, creative_units=found.job.cost, adopted=True, request=request)
            except AmbiguousOutcome as exc:
                LOG.warning("submit outcome unknown (%s); looking for the job instead of resubmitting", exc.cause)
                sub = await self._reconciler.adopt(request, endpoint, match, _first_sent(wire), exc.cause, ticket)
                self._tickets[sub.job_id] = ticket
                return sub
            except ScenarioError as exc:
                if wire.answered and isinstance(exc, (RateLimitedError, ServerError)):
                    # refused to the end (429/503), but such an answer may follow an acceptance: look once
                    adopted = await self._adopt_if_created(request, endpoint, match, wire, ticket)
                    if adopted is not None:
                        return adopted
                await self._intents.refused(ticket, exc.message)
                raise
        except asyncio.CancelledError:
            if wire.maybe_sent:
                await self._reconciler.recover_cancelled_submit(endpoint, match, _first_sent(wire), ticket)
            elif wire.answered:
                await self._intents.uncertain(
                    ticket, "cancelled while waiting to resend after a 429/503 answer; a job may exist"
                )
            else:
                await self._intents.refused(ticket, "cancelled before the request was sent")
            raise
        status = response.status_code
        if status == DRY_RUN_STATUS:
            await self._intents.refused(ticket, "answered with a price quote (HTTP 269)")
            raise ScenarioError("Scenario answered the generation request with a price quote (HTTP 269): no job")
        if not 200 <= status < 300:
            error = api_error(response, what=what)
            await self._intents.refused(ticket, error.message)
            raise error
        data = decode_body(response)
        job = _job_in_reply(data)
        if job is None:
            # A 2xx without a usable job (broken JSON, an HTML page, no or a malformed id): the job may exist.
            cause = f"HTTP {status} answer without a usable job id"
            LOG.warning("submit answered %s; looking for the job instead of resubmitting", cause)
            sub = await self._reconciler.adopt(request, endpoint, match, _first_sent(wire), cause, ticket)
            self._tickets[sub.job_id] = ticket
            return sub
        cost = data.get("creativeUnitsCost") if isinstance(data, Mapping) else None
        if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost):
            cost = job.cost
        if not await self._intents.claim(ticket, job.job_id, adopted=False, cost=cost):
            held = ScenarioError(
                f"Scenario answered the generation request with job {job.job_id}, which another run already "
                "holds; it was not adopted twice. Check the job with Poll Job",
                job_id=job.job_id,
            )
            await self._intents.uncertain(ticket, held.message, [job.job_id])
            raise held
        self._tickets[job.job_id] = ticket
        LOG.info("submitted job %s (seed %s)", job.job_id, request.seed)
        return Submission(
            job=job,
            creative_units=float(cost) if cost is not None else None,
            adopted=False,
            request=request,
        )

    async def _check_before_resend(
        self, endpoint: str, match: Mapping[str, Any], wire: WireState, ticket: Ticket
    ) -> None:
        """Before a paid resend: adopt a matching job created since the first send, or refuse to resend blind."""
        found = await self._reconciler.look_for_job(
            endpoint, match, _first_sent(wire), attempts=1, interval=0.0, ticket=ticket
        )
        if found.job is not None:
            LOG.warning(
                "Scenario created job %s although it answered 429/503; adopted it instead of resending",
                found.job.job_id,
            )
            self._tickets[found.job.job_id] = ticket
            raise _FoundBeforeResend(found.job)
        if found.lookup_error is not None or found.candidates:
            why = "the job list could not be read" if found.lookup_error else "several matching jobs exist"
            raise AmbiguousOutcome(f"a 429/503 answer, and before resending {why}")

    async def _adopt_if_created(
        self, request: ControlNetRequest, endpoint: str, match: Mapping[str, Any], wire: WireState, ticket: Ticket
    ) -> Submission | None:
        try:
            await self._check_before_resend(endpoint, match, wire, ticket)
        except _FoundBeforeResend as found:
            return Submission(job=found.job, creative_units=found.job.cost, adopted=True, request=request)
        except AmbiguousOutcome as exc:
            sub = await self._reconciler.adopt(request, endpoint, match, _first_sent(wire), exc.cause, ticket)
            self._tickets[sub.job_id] = ticket
            return sub
        return None

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
                try:
                    job = await self.get_job(record.job_id)
                except NotFoundError:
                    await self._intents.finished(record.job_id, "failed", reason="the job no longer exists")
                    continue
                if job.status in (JobStatus.FAILURE, JobStatus.CANCELED):
                    await self._intents.finished(
                        record.job_id, "failed" if job.status == JobStatus.FAILURE else "canceled"
                    )
                    continue
                self._tickets[job.job_id] = ticket
                LOG.info("resumed job %s, left unfinished by an earlier run; nothing submitted", job.job_id)
                return Submission(job=job, creative_units=0.0, adopted=True, request=request, reused=True)
            sent = record.first_sent_at or record.created_at
            found = await self._reconciler.look_for_job(endpoint, match, sent, attempts=1, interval=0.0, ticket=ticket)
            if found.job is not None:
                self._tickets[found.job.job_id] = ticket
                LOG.info("found job %s of an earlier run's unanswered request; nothing submitted", found.job.job_id)
                return Submission(job=found.job, creative_units=0.0, adopted=True, request=request, reused=True)
            if found.lookup_error is not None or found.candidates:
                raise OutcomeUnknownError(
                    "Scenario: an earlier run sent this same request and stopped before knowing its outcome, and "
                    "the job list could not settle it "
                    f"({'several matching jobs' if found.candidates else 'the job list could not be read'}); "
                    "nothing was submitted. Check 'python -m scenario_api jobs --local --pending'"
                )
            await self._intents.refused(ticket, "no job was found for it when the same request ran again")
        return None

    async def resume_intent(self, record: Record) -> str | None:
        """Take over an unfinished ledger intent left by a process that is gone; return its job id, or None.

        An accepted intent already names its job. One that was being sent (or
        whose outcome was unknown) is looked for in the job list with its stored
        request, from a few seconds before it was written; the job found is
        claimed for it. None: no job could be found (the outcome stays unknown).
        The caller then waits with :meth:`wait_for_job` (a Stop cancels the job).
        """
        ticket = self._intents.take_over(record)
        if record.job_id:
            self._tickets[record.job_id] = ticket
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
            attempts=self.reconcile_attempts,
            interval=self.reconcile_interval,
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
        self._tickets[found.job.job_id] = ticket
        return found.job.job_id

    async def _reuse_succeeded(self, request: ControlNetRequest, fingerprint: str) -> Submission | None:
        """An earlier succeeded job with the same fingerprint, whose assets still exist; None to submit anew."""
        record = await self._intents.reusable(fingerprint, kind=SUBMIT, exclude=self._served)
        if record is None or not record.job_id:
            return None
        try:
            job = await self.get_job(record.job_id)
            if job.status != JobStatus.SUCCESS or not job.asset_ids:
                raise NotFoundError("not a finished job any more")
            for asset_id in job.asset_ids:
                await self.get_asset(asset_id)
        except NotFoundError:
            LOG.info("job %s can no longer be reused (its results are gone); submitting anew", record.job_id)
            self._served.add(record.id)
            return None
        self._served.add(record.id)
        LOG.info("reused job %s (same request and seed, already paid for); nothing submitted", job.job_id)
        return Submission(job=job, creative_units=0.0, adopted=False, request=request, reused=True)

    def _follow(self, job: Job, slot: Slot | None) -> None:
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

    def schedule(self, job_id: str) -> EtaSchedule:
        """The ETA-aware poll schedule for a job (submitted by this client or not), with this client's policy."""
        submitted_at, created_at = self._submitted.get(job_id, (None, None))
        return EtaSchedule(self.poll_policy, submitted_at=submitted_at, created_at=created_at)

    def _submit_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.submit_timeout, connect=min(10.0, self.submit_timeout))

    # ------------------------------------------------------------------ jobs

    async def get_job(self, job_id: str) -> Job:
        """The job's current state."""
        job_id = spec.check_id("jobId", job_id)
        response = await self._transport.read(
            "GET", f"/jobs/{job_id}", what=f"job {job_id}", policy=self.retry, job_id=job_id
        )
        job = Job.from_api(decode_body(response))
        if not job.job_id:
            raise ScenarioError("Scenario answered a job lookup without a job record", job_id=job_id)
        return job

    async def list_jobs(
        self,
        created_after: datetime | str | None = None,
        status: str | None = None,
        page_size: int = 50,
        max_pages: int = 10,
    ) -> list[Job]:
        """Recent jobs, newest first, following pagination tokens (short or empty pages are fine)."""
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValidationError("pageSize", page_size, f"an integer from 1 to {MAX_PAGE_SIZE}", param="page_size")
        params: dict[str, Any] = {"pageSize": page_size}
        if created_after is not None:
            params["createdAfter"] = iso_utc(created_after) if isinstance(created_after, datetime) else created_after
        if status is not None:
            params["status"] = status
        rows = await self._paged("/jobs", "jobs", params, max_pages=max_pages, what="the job list")
        jobs: list[Job] = []
        for row in rows:
            try:
                jobs.append(Job.from_api(row))
            except ScenarioError as exc:  # one hostile record must not hide the others
                LOG.warning("skipped a job record in the job list: %s", exc.message)
        return jobs

    async def _paged(
        self, path: str, key: str, params: Mapping[str, Any], *, max_pages: int, what: str
    ) -> list[Mapping[str, Any]]:
        rows: list[Mapping[str, Any]] = []
        token: str | None = None
        seen_tokens: set[str] = set()
        for _ in range(max(1, max_pages)):
            query = dict(params)
            if token:
                query["paginationToken"] = token
            response = await self._transport.read("GET", path, what=what, policy=self.retry, params=query)
            data = decode_body(response)
            page = data.get(key) if isinstance(data, Mapping) else None
            rows.extend(r for r in (page or []) if isinstance(r, Mapping))
            token = data.get("nextPaginationToken") if isinstance(data, Mapping) else None
            if not isinstance(token, str) or not token or token in seen_tokens:
                break
            seen_tokens.add(token)
        return rows

    async def wait_for_job(
        self,
        job_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        poll_interval: float | None = None,
        next_delay: NextDelay | None = None,
    ) -> Job:
        """Poll until the job ends (the loop of :mod:`.watch`); return it on success.

        * ``on_progress(job)`` (sync or async) runs after every poll; its
          exceptions propagate and do *not* cancel the job.
        * ``timeout`` counts only time after the job left ``pending``/``queued``
          (a long queue is Scenario's capacity, not a stuck job). On expiry:
          :class:`ScenarioTimeoutError` with the job id; the job is *not*
          canceled, so it can still be collected later (Poll Job / ``fetch``).
        * ``next_delay(job, polls)`` replaces the fixed ``poll_interval``.
        * Cancelling the task sends one shielded, best-effort cancel for the
          job, then the ``CancelledError`` goes on.
        * failure -> :class:`JobFailedError` (reason and hint); canceled
          elsewhere -> :class:`JobCanceledError`; an unknown status -> ScenarioError.
        """
        job_id = spec.check_id("jobId", job_id)
        interval = self.poll_interval if poll_interval is None else max(0.0, poll_interval)
        ticket = self._tickets.get(job_id)

        async def on_update(job: Job) -> None:
            if ticket is not None and ticket.adopted and not await self._intents.owns(ticket, job_id):
                raise _Displaced(job_id)
            if on_progress is not None:
                result = on_progress(job)
                if inspect.isawaitable(result):
                    await result

        first_delay = 0.0
        if next_delay is None and interval is None:
            schedule = self.schedule(job_id)
            next_delay = schedule
            if job_id in self._submitted:
                first_delay = schedule.first_delay()
        try:
            job = await watch_job(
                self,
                job_id,
                on_update=on_update,
                limits=Limits(run_timeout=timeout),
                next_delay=next_delay or fixed_interval(interval or 0.0),
                max_failures=self.max_poll_failures,
                first_delay=first_delay,
            )
            if isinstance(next_delay, EtaSchedule):
                next_delay(job)  # the finished job teaches the schedule its phase lengths (HISTORY)
        except asyncio.CancelledError:
            self._release_slot(job_id)
            if ticket is None or await self._intents.owns(ticket, job_id):
                await self._cancel_shielded(job_id)
                await self._intents.finished(job_id, "canceled", reason="stopped by the caller; a cancel was sent")
            else:
                LOG.warning("job %s belongs to another run; it was not cancelled", job_id)
            raise
        except _Displaced:
            assert ticket is not None
            sent = iso_utc(datetime.fromtimestamp(ticket.begun_at, UTC))
            raise OutcomeUnknownError(
                f"Scenario: job {job_id}, adopted after a lost reply, turned out to belong to another run (whose "
                "own reply named it); it was left to that run and not cancelled. The outcome of this request "
                f"(sent at {sent}, prompt {ticket.prompt!r}, seed {ticket.seed}) is unknown: check your recent jobs "
                "with Poll Job before running again",
                job_id=job_id,
            ) from None
        except (JobFailedError, JobCanceledError) as exc:
            state = "failed" if isinstance(exc, JobFailedError) else "canceled"
            await self._intents.finished(job_id, state, reason=str(exc))
            raise
        finally:
            self._release_slot(job_id)  # the job ended (or we stopped following it): its slot is free
        await self._intents.finished(job_id, "succeeded", asset_ids=job.asset_ids)
        for asset_id in job.asset_ids:
            self._asset_jobs[asset_id] = job_id
        return job

    async def cancel_job(self, job_id: str, *, best_effort: bool = True, timeout: float | None = None) -> Job | None:
        """Ask Scenario to cancel a job, once.

        Returns the job from the reply, or None when Scenario answers 400 (not
        cancellable, or already finished). With ``best_effort`` (default) network
        and server errors are logged and None is returned; a malformed job id
        always raises :class:`ValidationError` (nothing is sent).
        """
        job_id = spec.check_id("jobId", job_id)
        limit = self.cancel_timeout if timeout is None else timeout
        try:
            response = await self._transport.send(
                "POST", f"/jobs/{job_id}/action", json={"action": "cancel"}, timeout=httpx.Timeout(limit)
            )
        except httpx.TransportError as exc:
            if best_effort:
                LOG.warning("cancel of job %s not delivered (%s)", job_id, type(exc).__name__)
                return None
            raise TransportError(
                f"Could not send the cancel for job {job_id}: {type(exc).__name__}", job_id=job_id
            ) from None
        if response.status_code == 400:
            LOG.info("job %s not cancellable: %s", job_id, Redacted(decode_body(response)))
            return None
        if response.status_code >= 300:
            error = api_error(response, what=f"canceling job {job_id}", job_id=job_id)
            if best_effort:
                LOG.warning("cancel of job %s refused: %s", job_id, error.message)
                return None
            raise error
        LOG.info("cancel requested for job %s", job_id)
        return Job.from_api(decode_body(response))

    async def _cancel_shielded(self, job_id: str) -> None:
        """Best-effort cancel that survives the caller's own cancellation (and a second one)."""
        outcome = await finish_shielded(self.cancel_job(job_id, best_effort=True), bound=self.cancel_timeout + 1.0)
        if not outcome.ok:
            why = "timed out" if outcome.timed_out else type(outcome.error).__name__
            LOG.warning("best-effort cancel of job %s incomplete (%s)", job_id, why)
        if outcome.absorbed:
            raise asyncio.CancelledError()  # the caller was cancelled meanwhile: that goes on now

    # ------------------------------------------------------------------ assets

    async def get_asset(self, asset_id: str) -> Asset:
        """The asset record, including a fresh signed file URL."""
        asset_id = spec.check_id("assetId", asset_id)
        response = await self._transport.read("GET", f"/assets/{asset_id}", what=f"asset {asset_id}", policy=self.retry)
        asset = Asset.from_api(decode_body(response))
        if not asset.asset_id:
            raise ScenarioError(f"Scenario answered the lookup of asset {asset_id} without an asset record")
        return asset

    async def download_asset(self, asset_or_id: Asset | str) -> bytes:
        """The asset's file bytes, fetched without credentials from an allow-listed host.

        An expired/refused URL, a truncated body or a transient file-host error
        leads to a fresh :meth:`get_asset` and another try (bounded).
        """
        if isinstance(asset_or_id, Asset):
            asset: Asset | None = asset_or_id
            asset_id = spec.check_id("assetId", asset_or_id.asset_id)
        else:
            asset, asset_id = None, spec.check_id("assetId", asset_or_id)
        last: DownloadError | None = None
        for attempt in range(1, self.download_attempts + 1):
            if asset is None or not asset.url:
                asset = await self.get_asset(asset_id)
            if not asset.url:
                raise DownloadError(f"Asset {asset_id} has no file URL yet (status {asset.status!r})")
            try:
                data = await self._downloader.fetch(asset.url)
                await self._intents.receipt(self._asset_jobs.get(asset_id), asset_id, data)
                return data
            except (ExpiredURLError, TruncatedDownloadError, TransientDownloadError) as exc:
                last = exc
                LOG.warning("download of %s failed (%s); getting a fresh URL", asset_id, type(exc).__name__)
                asset = None
                if attempt < self.download_attempts:
                    await asyncio.sleep(self.retry.backoff(attempt))
        raise DownloadError(
            f"Could not download asset {asset_id} after {self.download_attempts} attempts: "
            f"{last.message if last else 'unknown error'}"
        )

    async def upload_image(self, data: bytes | str, name: str = "image.png") -> Asset:
        """Upload an image (bytes or a data URL) as an asset and return it.

        ``POST /assets`` follows the paid-request rules: it is resent only when
        it provably never reached Scenario (connect failure) or Scenario refused
        it (429/503). After an ambiguous failure (timeout after sending, dropped
        connection, 500/502/504) it raises :class:`OutcomeUnknownError` instead
        of uploading again behind the user's back; repeating the upload by hand
        is harmless (at worst it leaves an unused asset). This always uploads:
        to upload each distinct image once, use :meth:`image_ref` or
        :data:`~.uploads.UPLOADS`.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("name", name, "a non-empty asset name")
        if isinstance(data, str):
            try:
                from_data_url(data)
            except ImageDecodeError as exc:
                raise ValidationError("image", data, f"a PNG/JPEG/WebP data URL ({exc.message})") from None
            url = data
        elif isinstance(data, (bytes, bytearray, memoryview)):
            mime = sniff_mime(bytes(data))
            if mime is None:
                raise ValidationError("image", f"<{len(data)} bytes>", "PNG, JPEG or WebP image bytes")
            url = None
        else:
            raise ValidationError("image", type(data).__name__, "image bytes or a data URL")
        payload: dict[str, Any] | None = {"name": name.strip(), "image": url} if url is not None else None
        content: bytes | None = None
        if url is None:
            assert not isinstance(data, str) and mime is not None  # bytes were given and sniffed above
            raw_image = bytes(data)
            # base64 and JSON of megabytes are CPU work: built in a worker thread, in pieces short enough
            # that the event loop (the prompt's other nodes) never waits long for the GIL
            content = await asyncio.to_thread(_upload_body, name.strip(), raw_image, mime)
        else:
            raw_image = from_data_url(url)[0]
        what = f"the upload of '{name.strip()}'"
        digest = (
            await asyncio.to_thread(imaging_hash, raw_image) if len(raw_image) > 1 << 18 else imaging_hash(raw_image)
        )
        ticket = await self._intents.begin(
            UPLOAD,
            "/assets",
            {},
            prompt=name.strip(),
            fingerprint=self._intents.upload_fingerprint(digest),
        )
        try:
            try:
                response = await self._transport.paid(
                    "POST", "/assets", what=what, policy=self.paid_retry, json=payload, content=content
                )
            finally:
                await self._intents.sent(ticket)
        except AmbiguousOutcome as exc:
            await self._intents.uncertain(ticket, f"upload outcome unknown: {exc.cause}")
            raise OutcomeUnknownError(
                f"Scenario: the upload of '{name.strip()}' may or may not have created an asset ({exc.cause}). "
                "Nothing was retried automatically. Uploading again is harmless: at worst it leaves an unused asset",
                status=exc.status,
            ) from None
        except ScenarioError as exc:
            await self._intents.refused(ticket, exc.message)
            raise
        except asyncio.CancelledError:
            await self._intents.uncertain(ticket, "cancelled while the upload was on its way")
            raise
        if not 200 <= response.status_code < 300:
            error = api_error(response, what=what)
            await self._intents.refused(ticket, error.message)
            raise error
        asset = Asset.from_api(decode_body(response))
        if not asset.asset_id or not spec.ASSET_ID_RE.fullmatch(asset.asset_id):
            await self._intents.uncertain(ticket, f"HTTP {response.status_code} answer without a usable asset id")
            raise OutcomeUnknownError(
                f"Scenario answered the upload of '{name.strip()}' (HTTP {response.status_code}) without a usable "
                "asset id; it may or may not have created an asset. Uploading again is harmless: at worst it "
                "leaves an unused asset"
            )
        await self._intents.uploaded(ticket, asset.asset_id)
        LOG.info("uploaded asset %s (%s)", asset.asset_id, Redacted(url if url is not None else raw_image))
        return asset

    async def image_ref(self, png: bytes, *, name: str = "control.png") -> str:
        """How to reference ``png`` in a request: its data URL when small, else an uploaded asset id.

        Uploads go through the upload service (:mod:`.uploads`), so one image
        is uploaded once per account however many requests use it.
        """
        url = to_data_url(png, sniff_mime(png) or "image/png")
        if len(url) <= INLINE_IMAGE_LIMIT:
            return url
        return await UPLOADS.asset_id(self, png, name)

    # ------------------------------------------------------------------ all in one

    async def generate(
        self,
        request: ControlNetRequest,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        on_submitted: Callable[[Submission], Awaitable[None] | None] | None = None,
    ) -> tuple[Job, list[bytes]]:
        """Submit, wait, and download every result (concurrently, in order)."""
        submission = await self.submit(request)
        if on_submitted is not None:
            result = on_submitted(submission)
            if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
                await result
        job = await self.wait_for_job(submission.job_id, on_progress=on_progress, timeout=timeout)
        if not job.asset_ids:
            raise ScenarioError("Scenario reported success but listed no result assets", job_id=job.job_id)
        images = await self.download_all(job.asset_ids)
        return job, images

    async def download_all(self, asset_ids: Sequence[str] | Iterable[str]) -> list[bytes]:
        """Download several assets concurrently; results in the given order. One failure cancels the rest."""
        tasks = [asyncio.ensure_future(self.download_asset(a)) for a in asset_ids]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _action_limit(response: httpx.Response) -> int | None:
    """``details.actionLimit`` of a 429 body (Scenario's parallel-jobs ceiling), if any."""
    try:
        data = response.json()
    except ValueError:
        return None
    details = data.get("details") if isinstance(data, Mapping) else None
    return _positive_int(details.get("actionLimit")) if isinstance(details, Mapping) else None


async def _take(limiter: AccountLimiter, timeout: float) -> Slot:
    if not await limiter.acquire(timeout):
        LOG.warning("no free Scenario slot after %.0f s of waiting; submitting anyway (%r)", timeout, limiter)
    return Slot(limiter)


def _give_back_all(slots: dict[str, Slot]) -> None:
    for slot in list(slots.values()):
        slot.give_back()
    slots.clear()


async def _notify_wait(
    on_wait: Callable[[float, str], Awaitable[None] | None] | None, seconds: float, why: str
) -> None:
    if on_wait is not None:
        result = on_wait(seconds, why)
        if inspect.isawaitable(result):
            await result


_B64_PIECE = 3 * 2**18  # bytes per base64 piece (a multiple of 3): about a millisecond of work each


def _upload_body(name: str, data: bytes, mime: str) -> bytes:
    """``{"name": ..., "image": "data:<mime>;base64,..."}`` as JSON bytes (base64 needs no JSON escaping)."""
    parts = [b'{"name":', json.dumps(name).encode("utf-8"), b',"image":"data:', mime.encode("ascii"), b";base64,"]
    parts.extend(base64.b64encode(data[i : i + _B64_PIECE]) for i in range(0, len(data), _B64_PIECE))
    parts.append(b'"}')
    return b"".join(parts)
