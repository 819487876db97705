"""``python -m scenario_api``: generate, quote, fetch, list jobs and models from a terminal.

Useful on its own (scripts, CI) and as a recovery tool for the ComfyUI nodes:
``fetch JOB_ID`` collects a job whose wait was interrupted, ``jobs`` lists what
ran recently. ``--emulator`` runs everything against an in-process emulator
with its demo credentials, so the whole flow can be tried without a key.

Exit codes: 0 success, 2 bad input (arguments, request rules, missing
credentials: nothing paid was sent), 1 any other failure, 130 interrupted
(the remote job is canceled first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import hashlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from . import declared_inputs, spec
from .client import INLINE_IMAGE_LIMIT, ScenarioClient
from .config import Credentials, Settings
from .errors import ConfigurationError, ImageDecodeError, ScenarioError, ValidationError
from .imaging import (
    IMAGE_FORMATS,
    LOSSY_DEFAULT_QUALITY,
    content_hash,
    decode_image,
    encode_image,
    image_size,
    reencode_png,
    sniff_mime,
    to_data_url,
)
from .intents import ORIGIN
from .ledger import CLI_ORIGIN, Ledger, LedgerError
from .models import QUEUED_STATUSES, TERMINAL_STATUSES, ControlNetRequest, Job, JobStatus
from .pacing import server_time
from .version import __version__

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
LOG = logging.getLogger("scenario_api.cli")
DEFAULT_SIZE = 512
UPLOADS_AT_ONCE = 4  # control maps uploaded at once in a batch (jobs are limited per account)


class InputError(Exception):
    """A command-line value is unusable (exit code 2)."""


# --------------------------------------------------------------------------- arguments


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _request_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("request")
    g.add_argument(
        "--control",
        required=True,
        action="append",
        metavar="PATH|DIR|GLOB|ASSET_ID",
        help="control map: an image file (re-encoded as PNG, gray maps as one channel), an asset id, a folder or "
        "a glob of images (one job per map); repeat the flag for several",
    )
    g.add_argument("--prompt", required=True, help="text prompt")
    g.add_argument("--model", default="flux.1-dev", help="model id (default: flux.1-dev)")
    g.add_argument(
        "--modality",
        default="canny",
        help="name[:weight](,name[:weight])*, e.g. 'canny' or 'depth:0.5,pose:1.0' (default: canny)",
    )
    g.add_argument("--width", type=int, help="output width; default: from the control image (fitted), else 512")
    g.add_argument("--height", type=int, help="output height; default: from the control image (fitted), else 512")
    g.add_argument("--num-samples", type=int, help="images to generate (1-128; default 1)")
    g.add_argument("--guidance", type=_fraction, help="guidance scale (family default if omitted)")
    g.add_argument("--steps", type=int, help="inference steps (1-150; default 30)")
    g.add_argument("--seed", type=int, help="seed (0-2147483647; random if omitted, always sent)")
    g.add_argument("--negative-prompt", help="negative prompt")
    g.add_argument("--scheduler", help="scheduler (Stable Diffusion models only)")
    g.add_argument("--init-image", metavar="PATH|ASSET_ID", help="init image: makes the request img2img")
    g.add_argument("--strength", type=_fraction, help="img2img strength (0.01-1; default 0.75)")
    g.add_argument(
        "--init-format",
        choices=IMAGE_FORMATS,
        default="png",
        help="how an init image file is sent: png (lossless, default) or the opt-in lossy jpeg / webp",
    )
    g.add_argument(
        "--init-quality", type=int, default=None, help=f"jpeg/webp quality 1-100 (default {LOSSY_DEFAULT_QUALITY})"
    )
    g.add_argument("--control-start", type=_fraction, help="Flux: fraction of steps where control starts")
    g.add_argument("--control-end", type=_fraction, help="Flux: fraction of steps where control ends")
    g.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="ID[:SCALE]",
        help="custom models: a LoRA (or a composition) to apply, scale 1 when omitted; repeatable, or comma "
        "separated. On legacy models a LoRA is the --model itself",
    )
    g.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="custom models: one of the model's own inputs (VALUE read as JSON when it parses, else as text), "
        "checked against what the model declares; repeatable",
    )


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="start a local Scenario emulator with its demo credentials and use it (no key needed)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds a job may run after leaving the queue (default 600; queue time not counted)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        help="fixed seconds between job polls (default: an ETA-aware schedule from the job's own progress)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log HTTP requests (secrets are never logged)")
    _ledger_option(parser)


def _ledger_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger",
        metavar="PATH",
        help="the job ledger file (default $SCENARIO_STATE_DIR/ledger.sqlite3, else "
        "~/.local/state/scenario-controlnet/ledger.sqlite3; ComfyUI's is <user dir>/scenario/ledger.sqlite3)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scenario_api",
        description="Scenario ControlNet from the command line. Credentials come from SCENARIO_API_KEY and "
        "SCENARIO_API_SECRET (SCENARIO_API_URL and SCENARIO_PROJECT_ID optional), or use --emulator.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="generate images and write them to --out")
    _request_options(gen)
    gen.add_argument("--out", default="out", help="output directory (default ./out)")
    gen.add_argument("--quote-only", action="store_true", help="print the price in creative units and exit")
    gen.add_argument(
        "--no-reuse",
        action="store_true",
        help="always submit (and pay), even when the same request and seed already succeeded",
    )
    gen.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="at most this many jobs at once for several control maps (1-64; default: as many as the account's"
        " parallel limit allows, learnt from Scenario; the rest wait their turn without being sent)",
    )
    _common_options(gen)

    quote = sub.add_parser("quote", help="print the price of a request (dry run, nothing is charged)")
    _request_options(quote)
    _common_options(quote)

    fetch = sub.add_parser("fetch", help="wait for a job and download its results (recovery)")
    fetch.add_argument("job_id", metavar="JOB_ID")
    fetch.add_argument("--out", default="out", help="output directory (default ./out)")
    _common_options(fetch)

    models = sub.add_parser(
        "models", help="list models across all pages (default: your own private models, as Scenario does)"
    )
    models.add_argument("--public", action="store_true", help="list Scenario's public catalog instead")
    models.add_argument("--type", dest="model_type", metavar="TYPE", help="only this type, e.g. flux.1-lora or custom")
    models.add_argument(
        "--capability", metavar="NAME", help="only models with this capability, e.g. controlnet (LoRAs included)"
    )
    models.add_argument("--max-pages", type=int, default=50, help="stop after this many pages (default 50)")
    _common_options(models)

    jobs = sub.add_parser("jobs", help="list recent jobs (from Scenario, or with --local from the job ledger)")
    jobs.add_argument("--limit", type=int, default=20, help="how many (1-100, default 20)")
    jobs.add_argument("--status", help="only jobs with this status (e.g. in-progress, success)")
    jobs.add_argument("--local", action="store_true", help="list the job ledger on this machine (no network)")
    jobs.add_argument("--pending", action="store_true", help="with --local: only unfinished entries")
    _common_options(jobs)

    resume = sub.add_parser("resume", help="finish every unfinished job in the ledger: wait and download")
    resume.add_argument("--out", default="out", help="output directory (default ./out)")
    _common_options(resume)
    return parser


# --------------------------------------------------------------------------- terminal output


@dataclass
class ProgressLine:
    """Job progress on the terminal: one rewritten line on a TTY, plain lines otherwise."""

    stream: TextIO
    tty: bool
    started: float = field(default_factory=time.monotonic)
    running_at: float | None = None
    finished_at: float | None = None
    _last: str = ""

    def __call__(self, job: Job) -> None:
        now = time.monotonic()
        if self.running_at is None and job.status not in QUEUED_STATUSES:
            self.running_at = now
        if job.terminal and self.finished_at is None:
            self.finished_at = now
        pct = ""
        if job.status in (JobStatus.IN_PROGRESS, JobStatus.FINALIZING) and job.progress:
            pct = f" {int(round(job.progress * 100))}%"
        text = f"{job.job_id}: {job.label}{pct}"
        if self.tty:
            self.stream.write("\r" + text.ljust(max(len(self._last), len(text))))
            if job.terminal:
                self.stream.write("\n")
        elif _coarse(text) != _coarse(self._last):
            self.stream.write(text + "\n")
        self.stream.flush()
        self._last = text

    def timings(self, download_seconds: float | None = None, job: Job | None = None) -> str:
        """Queue and run time: from the job's own dates when it has them (the polls may never have seen it
        running), else from what the polls saw."""
        phases = server_phases(job) if job is not None else None
        if phases is not None:
            queued, running = phases
        else:
            end = self.finished_at or time.monotonic()
            queued = (self.running_at or end) - self.started
            running = end - self.running_at if self.running_at is not None else 0.0
        parts = [f"queued {queued:.1f} s", f"running {running:.1f} s"]
        if download_seconds is not None:
            parts.append(f"download {download_seconds:.1f} s")
        return ", ".join(parts)


def server_phases(job: Job) -> tuple[float, float] | None:
    """(queued, running) seconds from the job's ``createdAt`` and ``statusHistory``, or None without them.

    Queued ends when the job first leaves ``pending`` / ``queued`` (as the progress line counts it); running
    ends at its terminal status.
    """
    dated = [(str(h.get("status")), server_time(h.get("date"))) for h in job.status_history]
    times = [(status, t) for status, t in dated if t is not None]
    created = server_time(job.created_at) if job.created_at else (times[0][1] if times else None)
    left_queue = next((t for status, t in times if status not in QUEUED_STATUSES), None)
    ended = next((t for status, t in reversed(times) if status in TERMINAL_STATUSES), None)
    if created is None or left_queue is None or ended is None or not created <= left_queue <= ended:
        return None
    return left_queue - created, ended - left_queue


def _coarse(text: str) -> str:
    """Plain-line mode prints a line per status and per 10 % step, not per poll."""
    head, _, pct = text.rpartition(" ")
    return f"{head} {int(pct[:-1]) // 10}" if pct.endswith("%") and pct[:-1].isdigit() else text


def _say(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class ImageArg:
    ref: str  # data URL or asset id
    size: tuple[int, int] | None  # (width, height) when read from a file
    png: bytes | None


def _read_image_arg(value: str, flag: str, fmt: str = "png", quality: int | None = None) -> ImageArg:
    """A file (sent as PNG, or as JPEG/WebP when ``fmt`` asks: init images only) or an asset id."""
    path = Path(value).expanduser()
    if path.is_file():
        try:
            raw = path.read_bytes()
            if fmt == "png":
                data, mime = reencode_png(raw), "image/png"
            else:
                started = time.perf_counter()
                encoded = encode_image(decode_image(raw).rgb, format=fmt, quality=quality)
                data, mime = encoded.data, encoded.mime
                _say(
                    f"{flag}: sent as {fmt.upper()} q{quality or LOSSY_DEFAULT_QUALITY}: {len(data) / 1024:.0f} KiB "
                    f"(file {len(raw) / 1024:.0f} KiB), encoded in {(time.perf_counter() - started) * 1000:.0f} ms"
                )
        except (ImageDecodeError, OSError, ValueError) as exc:
            raise InputError(f"{flag}: cannot use {value!r}: {exc}") from None
        return ImageArg(to_data_url(data, mime), image_size(data), data)
    if spec.ASSET_ID_RE.match(value):
        return ImageArg(value, None, None)
    raise InputError(f"{flag}: {value!r} is neither an existing image file nor an asset id like 'asset_…'")


async def _inline_or_upload(client: ScenarioClient, image: ImageArg, name: str) -> str:
    """Keep small images inline; upload big ones once (the limit is INLINE_IMAGE_LIMIT)."""
    if image.png is None or len(image.ref) <= INLINE_IMAGE_LIMIT:
        return image.ref
    return await client.image_ref(image.png, name=name)


def _write_results(
    out: Path, job: Job, images: Sequence[bytes], *, label: str | None = None, ledger: Ledger | None = None
) -> list[Path]:
    """Write ``<job id>_<n>.png`` (or ``<label>_<n>.png`` in a batch); record each file in the ledger."""
    out.mkdir(parents=True, exist_ok=True)
    record = ledger.by_job(job.job_id) if ledger is not None else None
    written = []
    for i, data in enumerate(images):
        if sniff_mime(data) != "image/png":
            data = reencode_png(data, keep_alpha=True)
        target = out / f"{label or job.job_id}_{i}.png"
        target.write_bytes(data)
        written.append(target)
        if ledger is not None and record is not None and i < len(job.asset_ids):
            try:
                ledger.add_receipt(record.id, job.asset_ids[i], content_hash(data), len(data), str(target))
            except LedgerError as exc:
                LOG.warning("%s", exc.message)
    return written


# --------------------------------------------------------------------------- commands


def _build_request(
    args: argparse.Namespace, control: ImageArg, init: ImageArg | None, family: str, declared: Any = None
) -> ControlNetRequest:
    width, height = args.width, args.height
    custom = declared is not None and declared.inputs
    if custom:
        # a custom model: its own declared range and step; no size known = the model's default
        width, height = declared_inputs.derive_size(declared, width or 0, height or 0, control.size)
    elif (width is None or height is None) and control.size is not None:
        fit_w, fit_h = spec.fit_size(*control.size, family=family)
        width = fit_w if width is None else width
        height = fit_h if height is None else height
    default = None if custom else DEFAULT_SIZE
    ref = control.ref
    return ControlNetRequest(
        prompt=args.prompt,
        model_id=args.model,
        modality=args.modality,
        control_image=ref if ref.startswith("data:") else None,
        control_image_id=None if ref.startswith("data:") else ref,
        image=init.ref if init else None,
        strength=args.strength,
        num_samples=args.num_samples,
        guidance=args.guidance,
        num_inference_steps=args.steps,
        width=width if width is not None else default,
        height=height if height is not None else default,
        scheduler=args.scheduler,
        seed=args.seed,
        negative_prompt=args.negative_prompt,
        control_start=args.control_start,
        control_end=args.control_end,
        loras=declared_inputs.parse_loras(args.lora, field_name="--lora") or None,
        extra_inputs=declared_inputs.collect_assignments(args.input) or None,
    )


@dataclass(frozen=True)
class ControlInput:
    """One control map of a run: ``label`` names its outputs in a batch (the file's stem, or the asset id)."""

    label: str
    image: ImageArg


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _image_files(paths: Sequence[Path]) -> list[Path]:
    return sorted(p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _expand_controls(values: Sequence[str]) -> list[ControlInput]:
    """``--control`` values -> maps: a file, an asset id, a folder (its images) or a glob; checked before paying."""
    found: list[ControlInput] = []
    for value in values:
        path = Path(value).expanduser()
        if path.is_dir():
            files = _image_files(list(path.iterdir()))
            if not files:
                raise InputError(f"--control: the folder {value!r} holds no PNG, JPEG or WebP image")
        elif any(c in value for c in "*?[") and not path.is_file():
            files = _image_files([Path(p) for p in glob.glob(str(path))])
            if not files:
                raise InputError(f"--control: no PNG, JPEG or WebP image matches {value!r}")
        else:
            image = _read_image_arg(value, "--control")
            found.append(ControlInput(path.stem if image.png is not None else value, image))
            continue
        found.extend(ControlInput(f.stem, _read_image_arg(str(f), "--control")) for f in files)
    seen: dict[str, int] = {}
    unique: list[ControlInput] = []
    for item in found:  # two maps called house.png in two folders: house, house-2
        n = seen.get(item.label, 0) + 1
        seen[item.label] = n
        unique.append(item if n == 1 else replace(item, label=f"{item.label}-{n}"))
    return unique


def _batch_seed(args: argparse.Namespace, control: ImageArg) -> int:
    """A batch map's seed when --seed is omitted: derived from the map and the request, so a re-run is the same
    request (and, with reuse, costs nothing for what is already done)."""
    content = content_hash(control.png) if control.png is not None else control.ref
    key = "\0".join(str(v) for v in (args.prompt, args.model, args.modality, args.init_image or "", content))
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % (spec.SEED_MAX + 1)


async def _cmd_generate(client: ScenarioClient, args: argparse.Namespace, state: RunState) -> int:
    controls = _expand_controls(args.control)
    init = (
        _read_image_arg(args.init_image, "--init-image", args.init_format, args.init_quality)
        if args.init_image
        else None
    )
    model = await client.get_model(args.model)
    batch = len(controls) > 1 or any(
        not Path(v).expanduser().is_file() and not spec.ASSET_ID_RE.match(v) for v in args.control
    )
    requests = []
    for item in controls:
        request = _build_request(args, item.image, init, model.family, model.declared if model.custom else None)
        if batch and request.seed is None:
            request = replace(request, seed=_batch_seed(args, item.image))
        await client.validate(request)  # every map checked before anything is uploaded or paid
        requests.append(request)
    if args.command == "quote" or getattr(args, "quote_only", False):
        for item, request in zip(controls, requests, strict=True):
            quote = await client.quote(request)
            label = f"{item.label}: " if batch else ""
            _say(
                f"{label}price: {quote.creative_units:g} CU"
                + (f" (discount {quote.discount:g})" if quote.discount else "")
            )
        return EXIT_OK
    init_ref = await _inline_or_upload(client, init, "cli-init.png") if init else None
    if not batch:
        return await _generate_one(client, args, state, controls[0], requests[0], init_ref, None)
    if args.concurrency is not None and not 1 <= args.concurrency <= 64:
        raise InputError(f"--concurrency must be from 1 to 64 (got {args.concurrency})")
    # Jobs above the account's parallel limit wait in the client's per-account limiter (sized from the team
    # limits or a 429), exactly as a node's fan-out does; --concurrency only lowers that. Uploads are bounded.
    jobs_cap = asyncio.Semaphore(args.concurrency) if args.concurrency else None
    uploads = asyncio.Semaphore(UPLOADS_AT_ONCE)

    async def one(item: ControlInput, request: ControlNetRequest) -> int:
        async with jobs_cap or contextlib.nullcontext():
            try:
                return await _generate_one(client, args, state, item, request, init_ref, item.label, uploads)
            except ScenarioError as exc:
                _say(f"{item.label}: failed: {exc}")
                return EXIT_ERROR

    codes = await asyncio.gather(*(one(item, req) for item, req in zip(controls, requests, strict=True)))
    failed = sum(1 for c in codes if c != EXIT_OK)
    _say(f"batch: {len(codes) - failed} of {len(codes)} map(s) done" + (f", {failed} failed" if failed else ""))
    return EXIT_OK if not failed else EXIT_ERROR


async def _generate_one(
    client: ScenarioClient,
    args: argparse.Namespace,
    state: RunState,
    item: ControlInput,
    request: ControlNetRequest,
    init_ref: str | None,
    label: str | None,
    uploads: asyncio.Semaphore | None = None,
) -> int:
    async with uploads or contextlib.nullcontext():
        control_ref = await _inline_or_upload(client, item.image, "cli-control.png")
    request = replace(
        request,
        control_image=control_ref if control_ref.startswith("data:") else None,
        control_image_id=None if control_ref.startswith("data:") else control_ref,
        image=init_ref,
    ).with_seed()
    submission = await client.submit(request)
    state.job_id = submission.job_id
    state.job_ids.append(submission.job_id)
    how = (
        " (reused: already paid for, nothing submitted)"
        if submission.reused
        else " (recovered after a lost reply)"
        if submission.adopted
        else ""
    )
    prefix = f"{label}: " if label else ""
    _say(f"{prefix}job: {submission.job_id}{how}")
    _say(f"{prefix}seed: {request.seed}")
    if submission.creative_units is not None:
        _say(f"{prefix}cost: {submission.creative_units:g} CU")
    return await _wait_and_save(client, submission.job_id, args, state, label=label)


async def _wait_and_save(
    client: ScenarioClient, job_id: str, args: argparse.Namespace, state: RunState, *, label: str | None = None
) -> int:
    state.job_id = job_id
    progress = ProgressLine(sys.stderr, sys.stderr.isatty() and label is None)
    state.waiting = True
    job = await client.wait_for_job(job_id, on_progress=progress, timeout=args.timeout)
    state.waiting = label is not None and state.waiting  # other maps of a batch may still be waiting
    started = time.monotonic()
    images = await client.download_all(job.asset_ids)
    download = time.monotonic() - started
    prefix = f"{label}: " if label else ""
    for path in _write_results(Path(args.out), job, images, label=label, ledger=client.ledger):
        _say(f"{prefix}wrote {path}")
    if job.cost is not None:
        _say(f"{prefix}billed: {job.cost:g} CU")
    _say(f"{prefix}timings: {progress.timings(download, job)}")
    return EXIT_OK


async def _cmd_fetch(client: ScenarioClient, args: argparse.Namespace, state: RunState) -> int:
    job_id = spec.check_id("jobId", args.job_id)
    return await _wait_and_save(client, job_id, args, state)


async def _cmd_jobs(client: ScenarioClient, args: argparse.Namespace, state: RunState) -> int:
    if not 1 <= args.limit <= 100:
        raise InputError("--limit must be from 1 to 100")
    jobs = await client.list_jobs(status=args.status, page_size=args.limit, max_pages=1)
    if not jobs:
        _say("no jobs")
    for job in jobs[: args.limit]:
        seed = job.input.get("seed", "?") if job.input else "?"
        prompt = str(job.input.get("prompt", "")) if job.input else ""
        prompt = prompt if len(prompt) <= 50 else prompt[:47] + "..."
        _say(f"{job.job_id}  {job.status:<11}  {job.created_at or '?':<24}  seed {seed}  {prompt}")
    return EXIT_OK


async def _cmd_models(client: ScenarioClient, args: argparse.Namespace, state: RunState) -> int:
    if not 1 <= args.max_pages <= 1000:
        raise InputError("--max-pages must be from 1 to 1000")
    models = await client.list_models(
        privacy="public" if args.public else None, model_type=args.model_type, max_pages=args.max_pages
    )
    if args.capability:
        models = [m for m in models if args.capability in m.capabilities]
    if not models:
        _say("no models")
    for m in models:
        path = "custom path" if m.custom else ("legacy" if m.family != spec.CUSTOM else "-")
        name = str(m.name or "")
        name = name if len(name) <= 40 else name[:37] + "..."
        _say(f"{m.model_id:<36}  {m.type or '?':<20}  {path:<11}  {name}")
    return EXIT_OK


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _cmd_jobs_local(ledger: Ledger, args: argparse.Namespace) -> int:
    """``jobs --local [--pending]``: the ledger on this machine; no network, no credentials."""
    if not 1 <= args.limit <= 1000:
        raise InputError("--limit must be from 1 to 1000 with --local")
    records = ledger.pending(limit=args.limit) if args.pending else ledger.recent(limit=args.limit)
    if not records:
        _say("no unfinished jobs in the ledger" if args.pending else "the ledger is empty")
        return EXIT_OK
    now = time.time()
    _say(f"{'state':<11} {'job id':<32} {'age':>6}  {'cost':>8}  {'origin':<24} prompt")
    for r in records:
        job = r.job_id or (", ".join(r.candidates) if r.candidates else ("(upload)" if r.kind == "upload" else "-"))
        cost = f"{r.cost:g} CU" if r.cost is not None else "?"
        prompt = r.prompt if len(r.prompt) <= 40 else r.prompt[:37] + "..."
        _say(f"{r.state:<11} {job:<32} {_age(r.age(now)):>6}  {cost:>8}  {r.origin[:24]:<24} {prompt}")
        if r.state == "uncertain" and r.note:
            _say(f"{'':<11} outcome unknown: {r.note}")
    _say(f"ledger: {ledger.path}")
    return EXIT_OK


async def _cmd_resume(client: ScenarioClient, args: argparse.Namespace, state: RunState) -> int:
    """Finish every unfinished ledger entry of a process that is gone: wait for its job and download it."""
    ledger = client.ledger
    assert ledger is not None
    todo = [r for r in ledger.pending() if r.kind == "submit" and r.owner_alive() is not True]
    if not todo:
        _say("nothing to resume")
        return EXIT_OK
    failures = 0
    for record in todo:
        try:
            job_id = await client.resume_intent(record)
        except ScenarioError as exc:
            failures += 1
            _say(f"entry {record.id}: {exc}")
            continue
        if job_id is None:
            failures += 1
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.first_sent_at or record.created_at))
            _say(
                f"entry {record.id}: outcome unknown: sent {when}, prompt {record.prompt!r}, seed {record.seed}, "
                f"candidates: {', '.join(record.candidates) or 'none'}; check them with Poll Job"
            )
            continue
        _say(f"job: {job_id} (resumed)")
        try:
            await _wait_and_save(client, job_id, args, state, label=None)
        except ScenarioError as exc:
            failures += 1
            _say(f"{job_id}: {exc}")
    return EXIT_OK if not failures else EXIT_ERROR


COMMANDS = {
    "generate": _cmd_generate,
    "quote": _cmd_generate,
    "fetch": _cmd_fetch,
    "jobs": _cmd_jobs,
    "models": _cmd_models,
    "resume": _cmd_resume,
}


# --------------------------------------------------------------------------- running


@dataclass
class RunState:
    """What an interrupt handler needs to tell the user."""

    job_id: str | None = None
    waiting: bool = False  # True while wait_for_job runs (an interrupt then cancels the job)
    job_ids: list[str] = field(default_factory=list)  # every job of a batch


@contextmanager
def _settings_for(args: argparse.Namespace) -> Iterator[Settings]:
    """Environment settings, or an in-process emulator with its demo credentials."""
    if not args.emulator:
        yield Settings.from_env(require_credentials=True)
        return
    from .emulator import DEMO_KEY, DEMO_SECRET, Emulator

    emulator = Emulator(credentials=(DEMO_KEY, DEMO_SECRET))
    url = emulator.start()
    try:
        yield Settings(base_url=url, credentials=Credentials(DEMO_KEY, DEMO_SECRET))
    finally:
        emulator.stop()


def _open_ledger(args: argparse.Namespace) -> Ledger:
    return Ledger(Path(args.ledger).expanduser()) if getattr(args, "ledger", None) else Ledger.open_default()


async def _run(args: argparse.Namespace, settings: Settings, state: RunState) -> int:
    interval = args.poll_interval  # None: the client's ETA-aware schedule
    ledger = _open_ledger(args)
    token = ORIGIN.set(CLI_ORIGIN)
    try:
        reuse = not getattr(args, "no_reuse", False) and os.environ.get("SCENARIO_REUSE", "").strip() != "0"
        async with ScenarioClient(settings, poll_interval=interval, ledger=ledger, reuse=reuse) as client:
            return await COMMANDS[args.command](client, args, state)
    finally:
        ORIGIN.reset(token)
        ledger.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore"):  # they log full URLs, signed queries included
        logging.getLogger(noisy).setLevel(logging.WARNING)
    state = RunState()
    try:
        if args.command == "jobs" and args.local:
            ledger = _open_ledger(args)
            try:
                return _cmd_jobs_local(ledger, args)
            finally:
                ledger.close()
        with _settings_for(args) as settings:
            return asyncio.run(_run(args, settings, state))
    except KeyboardInterrupt:
        if len(state.job_ids) > 1:
            where = (
                f" Jobs of this batch: {', '.join(state.job_ids)}; running the same command again collects them "
                "without paying twice."
            )
        elif state.job_id and state.waiting:
            where = f" Scenario was asked to cancel job {state.job_id}."
        elif state.job_id:
            where = f" Job {state.job_id} was not canceled; 'python -m scenario_api fetch {state.job_id}' collects it."
        else:
            where = " If a job was submitted, 'python -m scenario_api jobs' lists it."
        print(f"\nInterrupted.{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValidationError, ConfigurationError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["main", "build_parser", "ProgressLine", "EXIT_OK", "EXIT_ERROR", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED"]
