"""Polling figure: latency added after a job succeeds, until the caller holds its asset ids.

Jobs of 5, 12, 30 and 60 job-seconds (each +-5 %; 15 % queued, 10 % warming
up, 70 % running, 5 % finalizing; steps proportional to the length, so one
kind of job takes about as long each time, as on Scenario) with a linear and
a jumpy progress profile run on the
emulator with ``clock_scale`` S (``--scale``, default 10): a 60 s job takes
6 s. Every poller's clock is scaled by the same S (the pack's poll policy, the
baseline's 3 s), so the run is the real one compressed; latencies are
reported in job seconds (real latency x S, which also multiplies the loopback
round trip by S: a conservative figure). The stalled-then-fast profile is
reported too, without a target.

Baseline, written out plainly here: ``GET /jobs/{id}`` every 3 s, as in
Scenario's guide.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from .common import DEMO_KEY, DEMO_SECRET, EmulatorProcess, Options, Row, Section, percentile, settings_for

SHARES = {"queued": 0.15, "warming_up": 0.10, "running": 0.70, "finalizing": 0.05}
BASELINE_INTERVAL = 3.0
TERMINAL = ("success", "failure", "canceled")


@dataclass
class Sample:
    method: str
    profile: str
    seconds: float  # job length in job seconds
    job_id: str
    returned: float = 0.0  # wall clock when the watcher returned
    latency: float = 0.0  # job seconds
    requests: int = 0


def _timing(seconds: float) -> dict[str, float]:
    return {k: round(v * seconds, 4) for k, v in SHARES.items()}


def _request(seed: int, seconds: float) -> Any:
    """Longer jobs have more steps, as on Scenario (run time follows steps, size and outputs)."""
    from scenario_api import ControlNetRequest

    return ControlNetRequest(
        num_inference_steps=int(2 * seconds),
        prompt="polling bench",
        model_id="flux.1-dev",
        modality="canny",
        control_image_id="asset_demo_canny",
        width=256,
        height=256,
        seed=seed,
        num_samples=1,
    )


def pack_client(emu: EmulatorProcess, scale: float) -> Any:
    """The pack's client with its default ETA-aware poll schedule, every duration of it divided by ``scale``."""
    from scenario_api import PollPolicy, ScenarioClient

    return ScenarioClient(settings_for(emu), poll_policy=PollPolicy().scaled(1.0 / scale))


async def pack_watch(client: Any, job_id: str, scale: float) -> None:
    """The pack's one job-watching loop (``ScenarioClient.wait_for_job``), as the nodes and the CLI use it."""
    await client.wait_for_job(job_id, timeout=3600)


async def baseline_watch(raw: httpx.AsyncClient, job_id: str, scale: float) -> None:
    while True:
        await asyncio.sleep(BASELINE_INTERVAL / scale)
        job = (await raw.get(f"/jobs/{job_id}")).json()["job"]
        if job["status"] in TERMINAL:
            return


def _iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _round(
    emu: EmulatorProcess, durations: tuple[float, ...], profiles: tuple[str, ...], scale: float, seed: int
) -> list[Sample]:
    import random

    jitter = random.Random(seed)
    samples: list[Sample] = []
    tasks: list[asyncio.Task[None]] = []
    auth = (DEMO_KEY, DEMO_SECRET)
    async with (
        pack_client(emu, scale) as client,
        httpx.AsyncClient(base_url=emu.url, auth=auth, trust_env=False, timeout=30) as raw,
        httpx.AsyncClient(base_url=emu.origin, trust_env=False, timeout=30) as control,
    ):
        await client.get_model("flux.1-dev")

        async def follow(sample: Sample, watcher: Any) -> None:
            await watcher
            sample.returned = time.time()

        for seconds in durations:
            for profile in profiles:
                for method in ("pack", "baseline"):
                    actual = seconds * jitter.uniform(0.95, 1.05)  # one kind of job never takes quite as long
                    body = {"timing": _timing(actual), "progress_profile": profile}
                    (await control.post("/_emulator/config", json=body)).raise_for_status()
                    seed += 1
                    sub = await client.submit(_request(seed, seconds))
                    sample = Sample(method, profile, actual, sub.job_id)
                    samples.append(sample)
                    watcher = (
                        pack_watch(client, sub.job_id, scale)
                        if method == "pack"
                        else baseline_watch(raw, sub.job_id, scale)
                    )
                    tasks.append(asyncio.create_task(follow(sample, watcher)))
        await asyncio.gather(*tasks)
        log = (await control.get("/_emulator/log")).json()
        for sample in samples:
            job = (await raw.get(f"/jobs/{sample.job_id}")).json()["job"]
            done = next(h["date"] for h in job["statusHistory"] if h["status"] == "success")
            sample.latency = (sample.returned - _iso(done)) * scale
            path = f"/v1/jobs/{sample.job_id}"
            # the final GET above is ours, not the watcher's; it is made after the log was read
            sample.requests = sum(1 for e in log if e["method"] == "GET" and e["path"] == path)
    return samples


def _summary(samples: list[Sample]) -> tuple[float, float, float, int]:
    lat = [s.latency for s in samples]
    worst_budget = max(s.requests / (s.seconds / 3 + 3) for s in samples)
    return percentile(lat, 50), percentile(lat, 95), worst_budget, max(s.requests for s in samples)


def run(opts: Options) -> Section:
    section = Section("polling")
    scale = opts.scale
    durations = (5.0, 12.0) if opts.quick else (5.0, 12.0, 30.0, 60.0)
    profiles = ("linear", "jumpy", "stalled-then-fast")
    runs = 1 if opts.quick else opts.runs
    samples: list[Sample] = []
    with EmulatorProcess(clock_scale=scale) as emu:
        for r in range(runs):
            samples += asyncio.run(_round(emu, durations, profiles, scale, seed=1000 * (r + 1)))
    if os.environ.get("BENCH_DUMP"):
        for s in samples:
            print("SAMPLE", s.method, s.profile, round(s.seconds, 1), round(s.latency, 2), s.requests, file=sys.stderr)
    targeted = [s for s in samples if s.profile in ("linear", "jumpy")]
    for label, subset, target in (
        ("linear + jumpy", targeted, "p50 <= 0.25 s, p95 <= 0.6 s, <= T/3 + 3 status GETs per job"),
        ("stalled-then-fast", [s for s in samples if s.profile == "stalled-then-fast"], "reported"),
    ):
        pack = [s for s in subset if s.method == "pack"]
        base = [s for s in subset if s.method == "baseline"]
        p50, p95, budget, most = _summary(pack)
        b50, b95, bbudget, bmost = _summary(base)
        met = None if target == "reported" else (p50 <= 0.25 and p95 <= 0.6 and budget <= 1.0)
        section.rows.append(
            Row(
                "polling",
                f"Added latency after success, {int(min(durations))}-{int(max(durations))} s jobs, {label}",
                f"p50 {p50:.2f} s, p95 {p95:.2f} s; GETs up to {budget:.2f}x the T/3+3 budget",
                f"fixed 3 s: p50 {b50:.2f} s, p95 {b95:.2f} s; GETs up to {bbudget:.2f}x budget",
                target,
                met,
            )
        )
    section.notes.append(
        f"polling: job clock x{scale:g} (a 60 s job runs {60 / scale:.1f} s); latencies in job seconds; "
        f"{len(targeted) // 2} jobs per contender with a target, {runs} round(s)."
    )
    return section
