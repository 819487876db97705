"""``ScenarioClient``: the Scenario ControlNet operations, async, one per event loop.

The two rules that shape this module:

1. **Never pay twice.** A paid request (a submit, or an upload) is resent only
   when it provably never reached Scenario (connect failure) or Scenario
   refused it (429/503). After any ambiguous failure of a submit (timeout after
   sending, dropped connection, 500/502/504) the client looks for the job it
   may have created (``GET /jobs?createdAfter=…``, matched on the echoed
   request: prompt, model, seed, modality, samples, control/init image, size
   and the other settings; see :func:`input_matches`) and adopts it, or raises
   :class:`OutcomeUnknownError` telling the user what to look for. Always
   sending our own seed makes the match reliable. An ambiguous upload raises
   :class:`OutcomeUnknownError` at once (there is nothing to look up).
2. **Validate before spending.** Every request is checked with
   :func:`spec.validate_body` (strict) before the paid call. Rules that no model
   family accepts are reported before *any* request; family-specific rules after
   the free model lookup.

Waiting honours a caller's ``should_cancel()`` (checked at least every 0.25 s)
and task cancellation: both send one shielded, best-effort remote cancel so an
abandoned job stops billing. A submit whose task is cancelled while the paid
request may already have reached Scenario (ComfyUI's ``asyncio.run`` cancels
every leftover task when a prompt ends) looks for the job it may have created,
cancels it, and only then lets the cancellation go on.

Adoption is guarded process-wide: a job id handed to any caller in this process
(submitted, adopted or seen in a dry run) is never adopted by another submit,
the lookup window starts a few seconds before the send (in the server's clock,
from the ``Date`` header), and when several unclaimed jobs match, none is
picked.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from . import spec
from .config import Settings
from .downloads import (
    DEFAULT_MAX_BYTES,
    Downloader,
    ExpiredURLError,
    HostPolicy,
    TransientDownloadError,
    TruncatedDownloadError,
)
from .errors import (
    DownloadError,
    ImageDecodeError,
    JobCanceledError,
    JobFailedError,
    OutcomeUnknownError,
    RateLimitedError,
    ScenarioError,
    ScenarioTimeoutError,
    ServerError,
    TransportError,
    ValidationError,
)
from .imaging import content_hash, from_data_url, sniff_mime, to_data_url
from .models import ACTIVE_STATUSES, Asset, ControlNetRequest, Job, Model, Quote, Submission
from .retry import CancelRequested, RetryPolicy, interruptible_sleep, run_cancellable
from .transport import (
    DEFAULT_TIMEOUT,
    LOG,
    AmbiguousOutcome,
    Transport,
    WireState,
    api_error,
    decode_body,
    redact,
)

__all__ = ["ScenarioClient", "INLINE_IMAGE_LIMIT", "precheck_request", "iso_utc"]

# Largest data URL sent inline in a request body; bigger images are uploaded as
# assets and referenced by id (Scenario documents no body limit; keep bodies small).
INLINE_IMAGE_LIMIT = 2 * 1024 * 1024

DRY_RUN_STATUS = 269
QUEUED_STATUSES = ("pending", "queued")
MAX_PAGE_SIZE = 100

# Upper bound on what a cancelled submit spends looking for (and cancelling) the
# job it may have created before the cancellation goes on. ComfyUI's
# ``asyncio.run`` cancels a leftover task once and then waits for it, so this
# time is spent, but it must stay short.
CANCEL_RECOVERY_SECONDS = 10.0
# Part of that budget kept for sending the cancel itself.
CANCEL_RECOVERY_CANCEL_SHARE = 4.0

ProgressCallback = Callable[[Job], "Awaitable[None] | None"]
CancelCheck = Callable[[], bool]


def iso_utc(moment: datetime) -> str:
    """``2026-05-01T12:00:00.000Z``: the ISO form Scenario uses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def precheck_request(request: ControlNetRequest) -> None:
    """Raise the :class:`ValidationError` of a problem that no model family accepts.

    The request is validated against each ControlNet family; when all of them
    reject it on the same field with the same explanation, the problem cannot
    depend on the model, so it is reported before any network call (not even
    the free model lookup). Family-specific problems wait for the lookup.
    Embedded data URLs are also decoded once, so a corrupt one never leaves.
    """
    failures: list[ValidationError] = []
    for family in (spec.FLUX, spec.SDXL, spec.SD15):
        try:
            spec.validate_body(request.endpoint, request.to_body(family), family, strict=True)
        except ValidationError as exc:
            failures.append(exc)
        else:
            break
    if len(failures) == 3 and all(e.field == failures[0].field for e in failures):
        first = failures[0]
        if all(e.allowed == first.allowed for e in failures):
            raise first
        rule = spec.RULES.get(first.field)
        if rule is not None:  # e.g. guidance 25: out of every family's range; say the widest one
            raise ValidationError(first.field, first.value, rule.describe(), param=first.param)
    for field, value in (("controlImage", request.control_image), ("image", request.image)):
        if isinstance(value, str) and value.startswith("data:"):
            try:
                from_data_url(value)
            except ImageDecodeError as exc:
                raise ValidationError(field, value, f"a valid base64 PNG/JPEG/WebP data URL ({exc.message})") from None


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
    return all(x.weight is None or y.weight is None or abs(x.weight - y.weight) < 1e-6 for x, y in zip(a, b))


# The emulator (and possibly Scenario) echoes an inline image as a short hash marker.
_DATA_URL_MARKER = re.compile(r"^<data URL sha256:([0-9a-f]{8,64})>$")
_IMAGE_FIELDS = ("controlImage", "controlImageId", "image")
_NUMBER_FIELDS = ("width", "height", "strength", "guidance", "numInferenceSteps")
_CUSTOM_NUMBER_FIELDS = ("controlStrength", "controlStart", "controlEnd")
# Stands in for a data URL that will be uploaded, while the custom body is validated.
_PENDING_ASSET = "asset_pending-upload"


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


async def _maybe_await(result: Any) -> None:
    if inspect.isawaitable(result):
        await result


class ClaimedJobs:
    """Job ids already handed to a caller in this process; never adopted again.

    Process-wide on purpose: two clients (two nodes, two prompts) may send
    identical requests with the same seed, and one client's lost reply must
    not make it adopt the job the other client was given. Guarded by a
    ``threading.Lock`` (never held across an await), so clients in different
    event loops or threads share it safely. Only the newest ``limit`` ids are
    kept: an older job is far outside any reconciliation window anyway.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self._ids: dict[str, None] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def claim(self, job_id: str) -> bool:
        """Record ``job_id``; True when no one had claimed it before."""
        with self._lock:
            if job_id in self._ids:
                return False
            self._ids[job_id] = None
            while len(self._ids) > self._limit:
                del self._ids[next(iter(self._ids))]
            return True

    def __contains__(self, job_id: object) -> bool:
        with self._lock:
            return job_id in self._ids


CLAIMED_JOBS = ClaimedJobs()


def _sent_at(wire: WireState) -> float:
    """Wall-clock time of the paid request's last send (now, if it never left)."""
    return wire.last_send if wire.last_send is not None else time.time()


def _short_prompt(body: Mapping[str, Any]) -> str:
    prompt = str(body["prompt"])
    return prompt if len(prompt) <= 60 else prompt[:57] + "..."


class _Search:
    """What a job lookup after an ambiguous submit found."""

    __slots__ = ("job", "candidates", "lookup_error")

    def __init__(self) -> None:
        self.job: Job | None = None
        self.candidates: list[str] = []  # set when several unclaimed jobs matched
        self.lookup_error: ScenarioError | None = None


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
        poll_interval: float = 2.0,
        cancel_timeout: float = 5.0,
        reconcile_attempts: int = 4,
        reconcile_interval: float = 2.0,
        reconcile_skew: float = 5.0,
        max_poll_failures: int = 3,
        max_download_bytes: int = DEFAULT_MAX_BYTES,
        download_attempts: int = 3,
        download_timeout: httpx.Timeout | float | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self._transport = Transport(self.settings, timeout=timeout)  # raises ConfigurationError without a key
        self.retry = retry or RetryPolicy()
        self.paid_retry = paid_retry or self.retry
        self.submit_timeout = submit_timeout
        self.poll_interval = poll_interval
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
        self._uploads: dict[str, str] = {}

    def __repr__(self) -> str:
        creds = self.settings.credentials
        return f"ScenarioClient(base_url={self.settings.base_url!r}, key={creds.key_hint if creds else None!r})"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ScenarioClient:
        self._transport.bind()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close both connection pools (API and downloads). Safe to call twice."""
        try:
            await self._transport.aclose()
        finally:
            await self._downloader.aclose()

    # ------------------------------------------------------------------ models

    async def get_model(self, model_id: str, *, should_cancel: CancelCheck | None = None) -> Model:
        """The model record (cached per client), which decides the request rules.

        ``should_cancel()`` is checked before every try and during retry waits
        (like every read: :class:`CancelRequested` when it fires).
        """
        model_id = spec.check_id("modelId", model_id)
        cached = self._models.get(model_id)
        if cached is not None:
            return cached
        response = await self._transport.read(
            "GET", f"/models/{model_id}", what=f"model '{model_id}'", policy=self.retry, should_cancel=should_cancel
        )
        model = Model.from_api(decode_body(response))
        if not model.model_id:
            raise ScenarioError(f"Scenario answered the lookup of model '{model_id}' without a model record")
        self._models[model_id] = model
        return model

    async def list_models(self, *, max_pages: int = 10) -> list[Model]:
        """Models visible to the key (follows pagination up to ``max_pages``)."""
        rows = await self._paged("/models", "models", {}, max_pages=max_pages, what="the model list")
        return [Model.from_api(row) for row in rows]

    # ------------------------------------------------------------------ requests

    async def validate(self, request: ControlNetRequest) -> dict[str, Any]:
        """Check ``request`` with the strict rules and return the wire body it would send.

        Only the free model lookup may go over the network (and nothing at all
        for problems no model family accepts). Raises :class:`ValidationError`.
        """
        return (await self._prepare(request))[1]

    async def _prepare(
        self, request: ControlNetRequest, should_cancel: CancelCheck | None = None, *, upload: bool = False
    ) -> tuple[Model, dict[str, Any]]:
        """The model and the validated wire body for ``request``.

        A custom model (``custom: true``) gets the ``/generate/custom/{id}``
        body; with ``upload`` its data URLs are uploaded (after validation, so
        an invalid request uploads nothing) and replaced by asset ids.
        """
        if not isinstance(request, ControlNetRequest):
            raise TypeError(f"expected a ControlNetRequest, got {type(request).__name__}")
        spec.check_id("modelId", request.model_id)
        precheck_request(request)
        model = await self.get_model(request.model_id, should_cancel=should_cancel)
        if model.family == spec.CUSTOM:
            return model, await self._custom_body(request, model, upload=upload, should_cancel=should_cancel)
        body = spec.validate_body(request.endpoint, request.to_body(model.family), model.family, strict=True)
        return model, body

    async def _custom_body(
        self, request: ControlNetRequest, model: Model, *, upload: bool, should_cancel: CancelCheck | None
    ) -> dict[str, Any]:
        """Adapt ``request`` to the custom path (:meth:`ControlNetRequest.to_custom_body`) and validate it."""
        spec.check_custom_capabilities(model.capabilities, model.model_id, img2img=request.image is not None)
        body = request.to_custom_body()
        pending = {
            f: body[f]
            for f in ("controlImage", "image")
            if isinstance(body.get(f), str) and body[f].startswith("data:")
        }
        checked = spec.validate_custom_body(
            {**body, **{f: _PENDING_ASSET for f in pending}}, model.capabilities, strict=True, model_id=model.model_id
        )
        for field, url in pending.items():
            if upload:
                name = "comfyui-control.png" if field == "controlImage" else "comfyui-init.png"
                checked[field] = await self._upload_once(url, name, should_cancel)
            else:
                checked[field] = url
        return checked

    async def _upload_once(self, data_url: str, name: str, should_cancel: CancelCheck | None) -> str:
        """The asset id of an image given as a data URL, uploaded at most once per client (content hash)."""
        data, _ = from_data_url(data_url)
        key = content_hash(data)
        if key not in self._uploads:
            self._uploads[key] = (await self.upload_image(data_url, name, should_cancel=should_cancel)).asset_id
        return self._uploads[key]

    @staticmethod
    def _route(request: ControlNetRequest, model: Model, body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """``(endpoint, path, match body)``: where ``body`` goes and what reconciliation compares.

        The custom body carries no model id (it is in the path); the match
        body adds it so a job's echo can be checked against it.
        """
        if model.family == spec.CUSTOM:
            return spec.CUSTOM_ENDPOINT, spec.custom_path(model.model_id), {**body, "modelId": model.model_id}
        return request.endpoint, spec.endpoint_path(request.endpoint), dict(body)

    async def quote(self, request: ControlNetRequest) -> Quote:
        """The price of ``request`` in creative units (a dry run: nothing is generated or charged)."""
        model, body = await self._prepare(request, upload=True)
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
        should_cancel: CancelCheck | None = None,
    ) -> Submission:
        """Start a paid generation and return its job (see the module doc for the retry rules).

        ``on_wait(seconds, why)`` is called before waiting out a 429/503 or a
        connect failure, so a UI can say "waiting for a Scenario slot".
        ``should_cancel()`` is checked during the model lookup, during those
        waits and right before every (re)send: a Stop while Scenario has not
        accepted the request yet raises ``JobCanceledError(by_caller=True)`` (no
        job id) and sends nothing more. A request already on the wire is never
        abandoned on a Stop (that would make its outcome unknown); the Stop then
        applies to the job, in :meth:`wait_for_job`.

        If the *task* is cancelled while the paid request may have reached
        Scenario (or during the lookup after an ambiguous answer), the client
        spends at most :data:`CANCEL_RECOVERY_SECONDS` looking for the job it
        may have created; a job found is logged at WARNING and sent a
        best-effort cancel, otherwise the prompt, seed and time to check are
        logged. The ``CancelledError`` is always re-raised.
        """
        request = request.with_seed()
        try:
            model, body = await self._prepare(request, should_cancel, upload=True)
        except CancelRequested:
            raise JobCanceledError(
                "Scenario: stopped before the request was sent; nothing was submitted", by_caller=True
            ) from None
        endpoint, path, match = self._route(request, model, body)
        what = f"the generation request ({path})"
        wire = WireState()
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
                    should_cancel=should_cancel,
                    wire=wire,
                )
            except AmbiguousOutcome as exc:
                LOG.warning("submit outcome unknown (%s); looking for the job instead of resubmitting", exc.cause)
                return await self._reconcile(request, match, _sent_at(wire), exc.cause, endpoint=endpoint)
        except CancelRequested:
            raise JobCanceledError(
                "Scenario: canceled before Scenario accepted the request; nothing was submitted", by_caller=True
            ) from None
        except asyncio.CancelledError:
            if wire.maybe_sent:
                await self._recover_cancelled_submit(request, match, _sent_at(wire), endpoint=endpoint)
            raise
        status = response.status_code
        if status == DRY_RUN_STATUS:
            raise ScenarioError("Scenario answered the generation request with a price quote (HTTP 269): no job")
        if not 200 <= status < 300:
            raise api_error(response, what=what)
        data = decode_body(response)
        job = Job.from_api(data if isinstance(data, Mapping) else {})
        if not job.job_id:
            raise ScenarioError(
                f"Scenario accepted the generation request (HTTP {status}) but sent no job id; check your recent "
                "jobs in the Scenario app before running again"
            )
        CLAIMED_JOBS.claim(job.job_id)
        cost = data.get("creativeUnitsCost") if isinstance(data, Mapping) else None
        LOG.info("submitted job %s (seed %s)", job.job_id, body["seed"])
        return Submission(
            job=job,
            creative_units=float(cost) if isinstance(cost, (int, float)) else job.cost,
            adopted=False,
            request=request,
        )

    def _submit_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.submit_timeout, connect=min(10.0, self.submit_timeout))

    def _server_time(self, local: float) -> datetime:
        """A local wall-clock instant expressed in the server's clock (``Date`` offset, else ours)."""
        return datetime.fromtimestamp(local + self._transport.clock_offset, UTC)

    async def _look_for_job(
        self, endpoint: str, body: Mapping[str, Any], sent_at: float, *, attempts: int, interval: float
    ) -> _Search:
        """Look for the one unclaimed job matching ``body`` created since the send; claim it.

        Only jobs created after the send (server clock) minus ``reconcile_skew``
        are listed. Jobs already claimed in this process are skipped. With
        several matches none is picked: the next try may see one of them
        claimed by its rightful owner; after the last try ``candidates`` lists
        them.
        """
        found = _Search()
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(interval)
            since = self._server_time(sent_at - self.reconcile_skew)
            try:
                jobs = await self.list_jobs(created_after=since, page_size=MAX_PAGE_SIZE)
            except ScenarioError as exc:
                found.lookup_error = exc
                LOG.warning("job lookup after an ambiguous submit failed: %s", type(exc).__name__)
                continue
            found.lookup_error = None
            matches: dict[str, Job] = {}
            for job in jobs:
                if job.job_id and job.job_id not in CLAIMED_JOBS and input_matches(job, endpoint, body):
                    matches.setdefault(job.job_id, job)
            if len(matches) == 1:
                job = next(iter(matches.values()))
                if CLAIMED_JOBS.claim(job.job_id):
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

    async def _reconcile(
        self,
        request: ControlNetRequest,
        body: Mapping[str, Any],
        sent_at: float,
        cause: str,
        *,
        endpoint: str | None = None,
    ) -> Submission:
        """Find the job an ambiguous submit may have created, or raise OutcomeUnknownError."""
        found = await self._look_for_job(
            endpoint or request.endpoint,
            body,
            sent_at,
            attempts=self.reconcile_attempts,
            interval=self.reconcile_interval,
        )
        if found.job is not None:
            LOG.info("adopted job %s after an ambiguous submit (%s)", found.job.job_id, cause)
            return Submission(job=found.job, creative_units=found.job.cost, adopted=True, request=request)
        since_text = iso_utc(self._server_time(sent_at))
        prompt = _short_prompt(body)
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

    async def _recover_cancelled_submit(
        self, request: ControlNetRequest, body: Mapping[str, Any], sent_at: float, *, endpoint: str | None = None
    ) -> None:
        """The submit's task was cancelled after the paid request may have landed: find and cancel the job.

        Bounded by :data:`CANCEL_RECOVERY_SECONDS`. Never raises except a
        further ``CancelledError``; the caller re-raises the original one.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCEL_RECOVERY_SECONDS
        since_text = iso_utc(self._server_time(sent_at))
        found: _Search | None = None
        try:
            found = await asyncio.wait_for(
                self._look_for_job(
                    endpoint or request.endpoint,
                    body,
                    sent_at,
                    attempts=self.reconcile_attempts,
                    interval=min(self.reconcile_interval, 1.0),
                ),
                CANCEL_RECOVERY_SECONDS - CANCEL_RECOVERY_CANCEL_SHARE,
            )
        except Exception as exc:  # noqa: BLE001 - best effort; CancelledError is not an Exception
            LOG.warning("job lookup after a cancelled submit did not finish (%s)", type(exc).__name__)
        if found is not None and found.job is not None:
            job_id = found.job.job_id
            LOG.warning("Scenario job %s was created while the caller was being cancelled; cancelling it", job_id)
            left = max(0.5, deadline - loop.time())
            try:
                await asyncio.wait_for(
                    self.cancel_job(job_id, best_effort=True, timeout=min(self.cancel_timeout, left)), left
                )
            except Exception as exc:  # noqa: BLE001 - best effort; CancelledError is not an Exception
                LOG.warning("best-effort cancel of job %s incomplete (%s)", job_id, type(exc).__name__)
            return
        if found is not None and found.candidates:
            LOG.warning(
                "Scenario: a generation request sent at %s was cancelled while on the wire; several jobs match it "
                "(%s), so none was cancelled. Check them with Poll Job (prompt %r, seed %s)",
                since_text,
                ", ".join(found.candidates),
                _short_prompt(body),
                body["seed"],
            )
            return
        LOG.warning(
            "Scenario: a generation request sent at %s was cancelled while on the wire and no job was found for it. "
            "It may still have been created and charged: check your recent jobs for prompt %r with seed %s",
            since_text,
            _short_prompt(body),
            body["seed"],
        )

    # ------------------------------------------------------------------ jobs

    async def get_job(self, job_id: str, *, should_cancel: CancelCheck | None = None) -> Job:
        """The job's current state."""
        job_id = spec.check_id("jobId", job_id)
        response = await self._transport.read(
            "GET",
            f"/jobs/{job_id}",
            what=f"job {job_id}",
            policy=self.retry,
            job_id=job_id,
            should_cancel=should_cancel,
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
        return [Job.from_api(row) for row in rows]

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
        should_cancel: CancelCheck | None = None,
        timeout: float | None = None,
        poll_interval: float | None = None,
    ) -> Job:
        """Poll until the job ends; return it on success.

        * ``on_progress(job)`` (sync or async) runs after every poll; its
          exceptions propagate and do *not* cancel the job.
        * ``timeout`` counts only time after the job left ``pending``/``queued``
          (a long queue is Scenario's capacity, not a stuck job). On expiry:
          :class:`ScenarioTimeoutError` with the job id; the job is *not*
          canceled, so it can still be collected later (Poll Job / ``fetch``).
        * ``should_cancel()`` is checked at least every 0.25 s; when True, one
          best-effort cancel is sent and ``JobCanceledError(by_caller=True)``
          raised. Task cancellation sends the same cancel and re-raises.
        * failure → :class:`JobFailedError` (reason and hint); canceled
          elsewhere → :class:`JobCanceledError`; an unknown status → ScenarioError.
        """
        job_id = spec.check_id("jobId", job_id)
        interval = self.poll_interval if poll_interval is None else max(0.0, poll_interval)
        try:
            return await self._wait(job_id, on_progress, should_cancel, timeout, interval)
        except CancelRequested:
            await self._cancel_shielded(job_id)
            raise JobCanceledError(
                f"Scenario job {job_id} canceled on request", by_caller=True, job_id=job_id
            ) from None
        except asyncio.CancelledError:
            await self._cancel_shielded(job_id)
            raise

    async def _wait(
        self,
        job_id: str,
        on_progress: ProgressCallback | None,
        should_cancel: CancelCheck | None,
        timeout: float | None,
        interval: float,
    ) -> Job:
        loop = asyncio.get_running_loop()
        running_since: float | None = None
        failures = 0
        while True:
            if should_cancel is not None and should_cancel():
                raise CancelRequested()
            try:
                job = await run_cancellable(self.get_job(job_id, should_cancel=should_cancel), should_cancel)
                failures = 0
            except (TransportError, ServerError, RateLimitedError) as exc:
                failures += 1
                if failures >= self.max_poll_failures:
                    raise type(exc)(
                        f"Lost contact with Scenario while waiting for job {job_id}: {exc.message}. The job may "
                        "still finish: collect it later with Poll Job or 'python -m scenario_api fetch'",
                        status=exc.status,
                        job_id=job_id,
                    ) from None
                LOG.warning("polling job %s failed (%s); will keep trying", job_id, type(exc).__name__)
                await interruptible_sleep(interval, should_cancel)
                continue
            if on_progress is not None:
                await _maybe_await(on_progress(job))
            if job.status == "success":
                return job
            if job.status == "failure":
                raise JobFailedError(
                    f"Scenario job {job_id} failed",
                    reason=job.error or "no reason given",
                    hint=job.hint,
                    job_id=job_id,
                )
            if job.status == "canceled":
                raise JobCanceledError(f"Scenario job {job_id} was canceled", job_id=job_id)
            if job.status not in ACTIVE_STATUSES:
                raise ScenarioError(
                    f"Scenario reported an unknown status {job.status!r} for job {job_id}; the client stopped "
                    "waiting (protocol change?)",
                    job_id=job_id,
                )
            now = loop.time()
            if running_since is None and job.status not in QUEUED_STATUSES:
                running_since = now
            nap = interval
            if timeout is not None and running_since is not None:
                left = running_since + timeout - now
                if left <= 0:
                    raise ScenarioTimeoutError(
                        f"Scenario job {job_id} did not finish within {timeout:g} s of starting (last status "
                        f"'{job.status}'). It was not canceled: collect it later with Poll Job or "
                        f"'python -m scenario_api fetch {job_id}'",
                        job_id=job_id,
                    )
                nap = min(nap, left)
            await interruptible_sleep(nap, should_cancel)

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
            raise TransportError(f"Could not send the cancel for job {job_id}: {type(exc).__name__}", job_id=job_id)
        if response.status_code == 400:
            LOG.info("job %s not cancellable: %s", job_id, redact(decode_body(response)))
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
        """Best-effort cancel that survives the caller's own cancellation."""
        task = asyncio.ensure_future(
            asyncio.wait_for(self.cancel_job(job_id, best_effort=True), self.cancel_timeout + 1.0)
        )
        try:
            await asyncio.shield(task)
        except BaseException as exc:  # noqa: BLE001 - best effort: never mask the original outcome
            LOG.warning("best-effort cancel of job %s incomplete (%s)", job_id, type(exc).__name__)

    # ------------------------------------------------------------------ assets

    async def get_asset(self, asset_id: str, *, should_cancel: CancelCheck | None = None) -> Asset:
        """The asset record, including a fresh signed file URL."""
        asset_id = spec.check_id("assetId", asset_id)
        response = await self._transport.read(
            "GET", f"/assets/{asset_id}", what=f"asset {asset_id}", policy=self.retry, should_cancel=should_cancel
        )
        asset = Asset.from_api(decode_body(response))
        if not asset.asset_id:
            raise ScenarioError(f"Scenario answered the lookup of asset {asset_id} without an asset record")
        return asset

    async def download_asset(self, asset_or_id: Asset | str, *, should_cancel: CancelCheck | None = None) -> bytes:
        """The asset's file bytes, fetched without credentials from an allow-listed host.

        An expired/refused URL, a truncated body or a transient file-host error
        leads to a fresh :meth:`get_asset` and another try (bounded).
        """
        try:
            return await self._download(asset_or_id, should_cancel)
        except CancelRequested:
            raise JobCanceledError("Download stopped on request", by_caller=True) from None

    async def _download(self, asset_or_id: Asset | str, should_cancel: CancelCheck | None) -> bytes:
        if isinstance(asset_or_id, Asset):
            asset: Asset | None = asset_or_id
            asset_id = spec.check_id("assetId", asset_or_id.asset_id)
        else:
            asset, asset_id = None, spec.check_id("assetId", asset_or_id)
        last: DownloadError | None = None
        for attempt in range(1, self.download_attempts + 1):
            if asset is None or not asset.url:
                asset = await self.get_asset(asset_id, should_cancel=should_cancel)
            if not asset.url:
                raise DownloadError(f"Asset {asset_id} has no file URL yet (status {asset.status!r})")
            try:
                fetching = self._downloader.fetch(asset.url, should_cancel=should_cancel)
                return await run_cancellable(fetching, should_cancel)
            except (ExpiredURLError, TruncatedDownloadError, TransientDownloadError) as exc:
                last = exc
                LOG.warning("download of %s failed (%s); getting a fresh URL", asset_id, type(exc).__name__)
                asset = None
                if attempt < self.download_attempts:
                    await interruptible_sleep(self.retry.backoff(attempt), should_cancel)
        raise DownloadError(
            f"Could not download asset {asset_id} after {self.download_attempts} attempts: "
            f"{last.message if last else 'unknown error'}"
        )

    async def upload_image(
        self, data: bytes | str, name: str = "image.png", *, should_cancel: CancelCheck | None = None
    ) -> Asset:
        """Upload an image (bytes or a data URL) as an asset and return it.

        ``POST /assets`` follows the paid-request rules: it is resent only when
        it provably never reached Scenario (connect failure) or Scenario refused
        it (429/503). After an ambiguous failure (timeout after sending, dropped
        connection, 500/502/504) it raises :class:`OutcomeUnknownError` instead
        of uploading again behind the user's back; repeating the upload by hand
        is harmless (at worst it leaves an unused asset).

        ``should_cancel()`` is checked right before every (re)send and during
        the 429/503 and connect-failure waits: a Stop there raises
        ``JobCanceledError(by_caller=True)`` and nothing was uploaded. An upload
        already on the wire is not abandoned.
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
            url = to_data_url(bytes(data), mime)
        else:
            raise ValidationError("image", type(data).__name__, "image bytes or a data URL")
        what = f"the upload of '{name.strip()}'"
        try:
            response = await self._transport.paid(
                "POST",
                "/assets",
                what=what,
                policy=self.paid_retry,
                json={"name": name.strip(), "image": url},
                should_cancel=should_cancel,
            )
        except CancelRequested:
            raise JobCanceledError(
                f"Scenario: the upload of '{name.strip()}' was stopped before Scenario accepted it; nothing was "
                "uploaded",
                by_caller=True,
            ) from None
        except AmbiguousOutcome as exc:
            raise OutcomeUnknownError(
                f"Scenario: the upload of '{name.strip()}' may or may not have created an asset ({exc.cause}). "
                "Nothing was retried automatically. Uploading again is harmless: at worst it leaves an unused asset",
                status=exc.status,
            ) from None
        if not 200 <= response.status_code < 300:
            raise api_error(response, what=what)
        asset = Asset.from_api(decode_body(response))
        if not asset.asset_id:
            raise ScenarioError("Scenario accepted the upload but returned no asset id")
        LOG.info("uploaded asset %s (%s)", asset.asset_id, redact(url))
        return asset

    async def image_ref(self, png: bytes, *, name: str = "control.png") -> str:
        """How to reference ``png`` in a request: its data URL when small, else an uploaded asset id.

        Uploads are remembered per client by content hash, so one image is
        uploaded once however many requests use it.
        """
        url = to_data_url(png, sniff_mime(png) or "image/png")
        if len(url) <= INLINE_IMAGE_LIMIT:
            return url
        key = content_hash(png)
        if key not in self._uploads:
            self._uploads[key] = (await self.upload_image(png, name)).asset_id
        return self._uploads[key]

    # ------------------------------------------------------------------ all in one

    async def generate(
        self,
        request: ControlNetRequest,
        *,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
        timeout: float | None = None,
        on_submitted: Callable[[Submission], Awaitable[None] | None] | None = None,
    ) -> tuple[Job, list[bytes]]:
        """Submit, wait, and download every result (concurrently, in order).

        ``should_cancel`` applies to every step: the submit's throttling waits,
        the wait for the job and the downloads.
        """
        submission = await self.submit(request, should_cancel=should_cancel)
        if on_submitted is not None:
            await _maybe_await(on_submitted(submission))
        job = await self.wait_for_job(
            submission.job_id, on_progress=on_progress, should_cancel=should_cancel, timeout=timeout
        )
        if not job.asset_ids:
            raise ScenarioError("Scenario reported success but listed no result assets", job_id=job.job_id)
        images = await self.download_all(job.asset_ids, should_cancel=should_cancel)
        return job, images

    async def download_all(
        self, asset_ids: Sequence[str] | Iterable[str], *, should_cancel: CancelCheck | None = None
    ) -> list[bytes]:
        """Download several assets concurrently; results in the given order. One failure cancels the rest."""
        tasks = [asyncio.ensure_future(self.download_asset(a, should_cancel=should_cancel)) for a in asset_ids]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
