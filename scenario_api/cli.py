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
import logging
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
from .imaging import image_size, reencode_png, sniff_mime, to_data_url
from .models import QUEUED_STATUSES, ControlNetRequest, Job, JobStatus
from .version import __version__

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_SIZE = 512


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
        metavar="PATH|ASSET_ID",
        help="control map: an image file (re-encoded as PNG, gray maps as one channel) or an asset id",
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
        "--poll-interval", type=float, help="seconds between job polls (default 2, 0.25 with --emulator)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log HTTP requests (secrets are never logged)")


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

    jobs = sub.add_parser("jobs", help="list recent jobs")
    jobs.add_argument("--limit", type=int, default=20, help="how many (1-100, default 20)")
    jobs.add_argument("--status", help="only jobs with this status (e.g. in-progress, success)")
    _common_options(jobs)
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

    def timings(self, download_seconds: float | None = None) -> str:
        end = self.finished_at or time.monotonic()
        queued = (self.running_at or end) - self.started
        running = end - self.running_at if self.running_at is not None else 0.0
        parts = [f"queued {queued:.1f} s", f"running {running:.1f} s"]
        if download_seconds is not None:
            parts.append(f"download {download_seconds:.1f} s")
        return ", ".join(parts)


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


def _read_image_arg(value: str, flag: str) -> ImageArg:
    path = Path(value).expanduser()
    if path.is_file():
        try:
            png = reencode_png(path.read_bytes())
        except (ImageDecodeError, OSError) as exc:
            raise InputError(f"{flag}: cannot use {value!r}: {exc}") from None
        return ImageArg(to_data_url(png), image_size(png), png)
    if spec.ASSET_ID_RE.match(value):
        return ImageArg(value, None, None)
    raise InputError(f"{flag}: {value!r} is neither an existing image file nor an asset id like 'asset_…'")


async def _inline_or_upload(client: ScenarioClient, image: ImageArg, name: str) -> str:
    """Keep small images inline; upload big ones once (the limit is INLINE_IMAGE_LIMIT)."""
    if image.png is None or len(image.ref) <= INLINE_IMAGE_LIMIT:
        return image.ref
    return await client.image_ref(image.png, name=name)


def _write_results(out: Path, job: Job, images: Sequence[bytes]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, data in enumerate(images):
        if sniff_mime(data) != "image/png":
            data = reencode_png(data, keep_alpha=True)
        target = out / f"{job.job_id}_{i}.png"
        target.write_bytes(data)
        written.append(target)
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


async def _cmd_generate(client: ScenarioClient, args: argparse.Namespace, state: RunState) -> int:
    control = _read_image_arg(args.control, "--control")
    init = _read_image_arg(args.init_image, "--init-image") if args.init_image else None
    model = await client.get_model(args.model)
    request = _build_request(args, control, init, model.family, model.declared if model.custom else None)
    await client.validate(request)  # every rule checked before anything is uploaded or paid
    if args.command == "quote" or getattr(args, "quote_only", False):
        quote = await client.quote(request)
        _say(f"price: {quote.creative_units:g} CU" + (f" (discount {quote.discount:g})" if quote.discount else ""))
        return EXIT_OK
    control_ref = await _inline_or_upload(client, control, "cli-control.png")
    init_ref = await _inline_or_upload(client, init, "cli-init.png") if init else None
    request = replace(
        request,
        control_image=control_ref if control_ref.startswith("data:") else None,
        control_image_id=None if control_ref.startswith("data:") else control_ref,
        image=init_ref,
    ).with_seed()
    submission = await client.submit(request)
    state.job_id = submission.job_id
    adopted = " (recovered after a lost reply)" if submission.adopted else ""
    _say(f"job: {submission.job_id}{adopted}")
    _say(f"seed: {request.seed}")
    if submission.creative_units is not None:
        _say(f"cost: {submission.creative_units:g} CU")
    return await _wait_and_save(client, submission.job_id, args, state)


async def _wait_and_save(client: ScenarioClient, job_id: str, args: argparse.Namespace, state: RunState) -> int:
    state.job_id = job_id
    progress = ProgressLine(sys.stderr, sys.stderr.isatty())
    state.waiting = True
    job = await client.wait_for_job(job_id, on_progress=progress, timeout=args.timeout)
    state.waiting = False
    started = time.monotonic()
    images = await client.download_all(job.asset_ids)
    download = time.monotonic() - started
    for path in _write_results(Path(args.out), job, images):
        _say(f"wrote {path}")
    if job.cost is not None:
        _say(f"billed: {job.cost:g} CU")
    _say(f"timings: {progress.timings(download)}")
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


COMMANDS = {
    "generate": _cmd_generate,
    "quote": _cmd_generate,
    "fetch": _cmd_fetch,
    "jobs": _cmd_jobs,
    "models": _cmd_models,
}


# --------------------------------------------------------------------------- running


@dataclass
class RunState:
    """What an interrupt handler needs to tell the user."""

    job_id: str | None = None
    waiting: bool = False  # True while wait_for_job runs (an interrupt then cancels the job)


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


async def _run(args: argparse.Namespace, settings: Settings, state: RunState) -> int:
    interval = args.poll_interval if args.poll_interval is not None else (0.25 if args.emulator else 2.0)
    async with ScenarioClient(settings, poll_interval=interval) as client:
        return await COMMANDS[args.command](client, args, state)


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
        with _settings_for(args) as settings:
            return asyncio.run(_run(args, settings, state))
    except KeyboardInterrupt:
        if state.job_id and state.waiting:
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
