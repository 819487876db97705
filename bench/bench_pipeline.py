"""Benchmark the pack's own overhead: image codec, client round trips, downloads.

Prints figures and compares them with the targets below; it never fails a
build. Run from the repository root:

    .venv/bin/python bench/bench_pipeline.py [--jobs 8] [--size 1024]

What is measured (all against an in-process emulator on loopback, with the
job clock set to zero so only our code and HTTP are timed):

- PNG encode/decode of a control map and a result (numpy <-> PNG bytes);
- client overhead of one ControlNet job: submit + polls + asset lookups +
  downloads, end to end, for 1 job and for N concurrent jobs;
- requests sent per job (fewer is kinder to Scenario's rate limits);
- peak Python heap while downloading and decoding a large result
  (tracemalloc), relative to the decoded RGB size.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scenario_api import (  # noqa: E402
    ControlNetRequest,
    ScenarioClient,
    Settings,
    imaging,  # noqa: E402
)
from scenario_api.config import Credentials  # noqa: E402
from scenario_api.emulator import Emulator, Timing  # noqa: E402

# Targets (per operation, on the 2-core CI-class machine).
TARGETS = {
    "encode_ms": 150.0,  # 1024x1024 RGB control map -> PNG
    "decode_ms": 60.0,  # 1024x1024 PNG -> RGB array
    "job_overhead_ms": 250.0,  # one job, zero server time, 1 sample
    "requests_per_job": 6,  # submit, >=1 poll, asset get, file get, model lookup (cached after first)
    "heap_ratio": 3.0,  # peak heap / decoded RGB bytes while downloading + decoding
}


def _map(size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    rgb = np.stack([(xx * 255 // size), (yy * 255 // size), ((xx ^ yy) & 255)], axis=-1)
    return rgb.astype(np.uint8)


def _timeit(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def bench_codec(size: int) -> dict[str, float]:
    arr = _map(size)
    png = imaging.encode_png(arr)
    return {
        "encode_ms": _timeit(lambda: imaging.encode_png(arr)),
        "decode_ms": _timeit(lambda: imaging.decode_image(png)),
        "png_kib": len(png) / 1024,
    }


async def _one_job(client: ScenarioClient, control_id: str, size: int, seed: int) -> None:
    req = ControlNetRequest(
        prompt="benchmark", control_image_id=control_id, modality="canny", width=size, height=size, seed=seed
    )
    job, images = await client.generate(req)
    assert len(images) == 1 and images[0][:8] == b"\x89PNG\r\n\x1a\n"


async def bench_jobs(emu: Emulator, jobs: int, size: int) -> dict[str, float]:
    key, secret = emu.credentials
    settings = Settings(base_url=emu.url, credentials=Credentials(key, secret))
    async with ScenarioClient(settings, poll_interval=0.05) as client:
        await client.get_model("flux.1-dev")  # warm the model cache and the connection
        before = len(emu.request_log())
        t0 = time.perf_counter()
        await _one_job(client, "asset_demo_canny", size, 1)
        single = (time.perf_counter() - t0) * 1000
        per_job_requests = len(emu.request_log()) - before

        t0 = time.perf_counter()
        await asyncio.gather(*(_one_job(client, "asset_demo_canny", size, 100 + i) for i in range(jobs)))
        concurrent = (time.perf_counter() - t0) * 1000

        # Peak heap while downloading + decoding one large result.
        big = ControlNetRequest(
            prompt="big", control_image_id="asset_demo_canny", modality="canny", width=2048, height=2048, seed=7
        )
        sub = await client.submit(big)
        job = await client.wait_for_job(sub.job_id, poll_interval=0.05)
        # The in-process emulator renders on first download; keep that out of the trace.
        await client.download_asset(job.asset_ids[0])
        tracemalloc.start()
        data = await client.download_asset(job.asset_ids[0])
        decoded = imaging.decode_image(data)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "job_overhead_ms": single,
        "requests_per_job": per_job_requests,
        f"{jobs}_jobs_concurrent_ms": concurrent,
        "per_job_when_concurrent_ms": concurrent / jobs,
        "big_png_mib": len(data) / 2**20,
        "heap_ratio": peak / decoded.rgb.nbytes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()

    figures: dict[str, float] = {}
    figures.update(bench_codec(args.size))
    zero = Timing(queued=0.0, warming_up=0.0, running=0.0)
    with Emulator(timing=zero) as emu:
        figures.update(asyncio.run(bench_jobs(emu, args.jobs, args.size)))

    print(f"{'figure':32} {'value':>10}  target")
    for name, value in figures.items():
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"<= {target:g}  {'ok' if value <= target else 'OVER'}"
        print(f"{name:32} {value:10.2f}  {verdict}")


if __name__ == "__main__":
    main()
