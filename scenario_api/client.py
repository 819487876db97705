"""``ScenarioClient``: the Scenario ControlNet operations, async, one per event loop.

The client is the public facade; each concern it offers lives in a module of its own:

* paid submits, from the recorded intent to the followed job's end
  (:mod:`.submission`), with reconciliation after an ambiguous answer
  (:mod:`.reconcile`) and the ledger bookkeeping of every paid request
  (:mod:`.intents`);
* the one job-watching loop (:mod:`.watch`), model records (:mod:`.model_lookup`),
  the one upload service and the paid upload itself (:mod:`.uploads`),
  parallel-job limits and the team limits (:mod:`.limits`).

The rules that shape it:

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
   submit whose request may be on the wire, or whose reply already named its
   job, finds the job, logs it and cancels it
   (:meth:`.reconcile.Reconciler.recover_cancelled_submit`), and further
   cancellations cannot cut that short (:mod:`.cancellation`). The
   ``CancelledError`` always goes on.
4. **Public methods raise** :class:`ScenarioError` subclasses (or
   ``CancelledError``), nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from . import spec
from .config import Settings
from .downloads import DEFAULT_MAX_BYTES, Downloader, HostPolicy
from .errors import (
    DownloadError,
    ExpiredURLError,
    ScenarioError,
    TransientDownloadError,
    TransportError,
    TruncatedDownloadError,
    ValidationError,
)
from .imaging import sniff_mime, to_data_url
from .intents import Intents
from .limits import INFERENCE, AccountLimiter, TeamLimits, limiter_for, read_team_limits
from .model_lookup import ModelLookup
from .models import Asset, ControlNetRequest, Job, Model, Quote, Submission
from .pacing import EtaSchedule, PollPolicy
from .reconcile import CLAIMED_JOBS, MAX_PAGE_SIZE, Reconciler, iso_utc
from .retry import RetryPolicy
from .spec import precheck_request
from .submission import OnWait, PaidJobs, Submitter, route
from .transport import DEFAULT_TIMEOUT, LOG, Redacted, Transport, api_error, decode_body, read_pages, shared_ssl_context
from .uploads import UPLOADS, upload_custom_inputs, upload_image
from .watch import NextDelay, OnUpdate

if TYPE_CHECKING:  # the ledger's store loads only when a ledger is opened
    from .ledger import Ledger, Record

__all__ = ["ScenarioClient", "INLINE_IMAGE_LIMIT", "precheck_request"]

# Largest data URL sent inline in a request body; bigger images are uploaded as
# assets and referenced by id (Scenario documents no body limit; keep bodies small).
INLINE_IMAGE_LIMIT = 2 * 1024 * 1024

ProgressCallback = OnUpdate


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
        self.slot_wait = slot_wait
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
        self.ledger = ledger
        self.reuse = bool(reuse and ledger is not None)
        self._intents = Intents(self.settings, ledger)
        self._models = ModelLookup(self._transport, self.settings, lambda: self.retry)
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
        self._jobs = PaidJobs(self, self._intents)
        self._submitter = Submitter(
            self,
            transport=self._transport,
            intents=self._intents,
            reconciler=self._reconciler,
            team_limits=TeamLimits(lambda: self.team_limits(), self.limiter),
            jobs=self._jobs,
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
        self._jobs.release_all()
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
        return await read_team_limits(self._transport, self.settings, self.retry)

    # ------------------------------------------------------------------ models (scenario_api.model_lookup)

    async def get_model(self, model_id: str) -> Model:
        """The model record (cached per client), which decides the request rules."""
        return await self._models.get(model_id)

    async def model_types(self, model_ids: Sequence[str]) -> dict[str, str | None]:
        """The ``type`` of each model id (LoRAs, compositions), ``None`` for one Scenario does not know (404)."""
        return await self._models.model_types(model_ids)

    async def referenced_types(self, request: ControlNetRequest, model: Model) -> dict[str, str | None]:
        """The types of the LoRAs a request names (free reads), for a custom model; ``{}`` otherwise.

        A LoRA given as ``model_id`` whose type has no legacy endpoint (say a
        ``zimage-lora``) is refused here: it runs through a base's LoRA input.
        """
        return await self._models.referenced_types(request, model)

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
        return await self._models.list_models(
            max_pages=max_pages, privacy=privacy, model_type=model_type, page_size=page_size
        )

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
        if model.family == spec.CUSTOM and upload:
            return model, await upload_custom_inputs(self, model, body)
        return model, body

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
        _, path, _ = route(request, model, body)
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
            await self._jobs.cancel_shielded(created.job_id)
            raise ScenarioError(
                "Scenario created a job for what was sent as a price quote (dry run); a cancel was sent for it, "
                "but it may be charged",
                job_id=created.job_id,
            )
        return Quote.from_api(data)  # raises ScenarioError when the answer carries no usable cost

    async def submit(self, request: ControlNetRequest, *, on_wait: OnWait | None = None) -> Submission:
        """Start a paid generation and return its job, within the account's parallel limit (:mod:`.submission`).

        Checked first (:meth:`validate`; a custom model's images are uploaded
        after that), always with a seed. The intent is recorded before the
        send; an ambiguous outcome is reconciled (``Submission.adopted``) or
        raises :class:`OutcomeUnknownError`, never resent blind. Above the
        parallel limit it waits for a slot, held until :meth:`wait_for_job` sees
        the job end; ``on_wait(seconds, why)`` is called before such waits.
        Cancelled once the request may be on the wire (or its reply named the
        job), it finds and cancels the job (bounded, shielded) or logs what to
        check, then re-raises the ``CancelledError``.
        """
        request = request.with_seed()
        model, body = await self._prepare(request, upload=True)
        return await self._submitter.submit(request, model, body, on_wait=on_wait)

    async def resume_intent(self, record: Record) -> str | None:
        """Take over an unfinished ledger intent left by a process that is gone; return its job id, or None.

        An accepted intent already names its job. One that was being sent (or
        whose outcome was unknown) is looked for in the job list with its stored
        request, from a few seconds before it was written; the job found is
        claimed for it. None: no job could be found (the outcome stays unknown).
        The caller then waits with :meth:`wait_for_job` (a Stop cancels the job).
        """
        return await self._submitter.resume_intent(record)

    def schedule(self, job_id: str) -> EtaSchedule:
        """The ETA-aware poll schedule for a job (submitted by this client or not), with this client's policy."""
        return self._jobs.schedule(job_id)

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
        rows = await read_pages(
            self._transport, "/jobs", "jobs", params, max_pages=max_pages, what="the job list", policy=self.retry
        )
        jobs: list[Job] = []
        for row in rows:
            try:
                jobs.append(Job.from_api(row))
            except ScenarioError as exc:  # one hostile record must not hide the others
                LOG.warning("skipped a job record in the job list: %s", exc.message)
        return jobs

    async def wait_for_job(
        self,
        job_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        poll_interval: float | None = None,
        next_delay: NextDelay | None = None,
    ) -> Job:
        """Poll until the job ends (the one loop of :mod:`.watch`); return it on success.

        * ``on_progress(job)`` (sync or async) runs after every poll; its
          exceptions propagate and do *not* cancel the job.
        * ``timeout`` counts only time after the job left ``pending``/``queued``
          (a long queue is Scenario's capacity, not a stuck job). On expiry:
          :class:`ScenarioTimeoutError` with the job id; the job is *not*
          canceled, so it can still be collected later (Poll Job / ``fetch``).
        * ``next_delay(job, polls)`` replaces the fixed ``poll_interval``
          (default: this client's ETA-aware :meth:`schedule`).
        * Cancelling the task sends one shielded, best-effort cancel for the
          job, then the ``CancelledError`` goes on.
        * failure -> :class:`JobFailedError` (reason and hint); canceled
          elsewhere -> :class:`JobCanceledError`; an unknown status -> ScenarioError.
        """
        job_id = spec.check_id("jobId", job_id)
        return await self._jobs.wait(
            job_id, on_progress=on_progress, timeout=timeout, poll_interval=poll_interval, next_delay=next_delay
        )

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
                await self._intents.receipt(self._jobs.asset_jobs.get(asset_id), asset_id, data)
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
        return await upload_image(self._transport, self._intents, self.paid_retry, data, name)

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
            try:
                result = on_submitted(submission)
                if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
                    await result
            except asyncio.CancelledError:
                await self._jobs.stop_following(submission.job_id)  # stopped before the wait: cancel the job
                raise
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
