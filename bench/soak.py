"""Soak: many paid jobs through the ComfyUI nodes against a hostile emulator, then count what happened.

    .venv/bin/python bench/soak.py            # 200 jobs, 16 at once, at 10 % and at 30 % faults
    .venv/bin/python bench/soak.py --quick    # 40 jobs, 8 at once (a minute or so)

The emulator runs in a subprocess (so every socket left in this process is the pack's), with a fast job
clock and a fault plan in which every request has the given chance of meeting a fault: lost replies, 429 /
503 / 502 after Scenario accepted, broken 2xx bodies, refusals, slow answers, failing polls and job-list
reads, expired and truncated downloads. Each job is one run of Scenario ControlNet Generate (its own
prompt and seed) with the node's job ledger in a temporary ComfyUI user folder.

Printed per fault rate:

* delivered: runs that returned their images;
* reported: runs that ended in a clear Scenario error (outcome unknown, failed job, ...);
* lost: jobs Scenario created (charged) that no run delivered, no error named and the ledger does not hold;
* duplicates: extra jobs created for one run (paid twice);
* leaked tasks / sockets: asyncio tasks still alive and sockets still open after every run ended;
* peak RSS of this process.

It never fails a build; it prints figures (and exits 1 only if something was lost or paid twice).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PACK = "scenario_soak_pack"
KEY, SECRET = "demo-key", "demo-secret"


def load_pack() -> Any:
    spec = importlib.util.spec_from_file_location(PACK, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK] = module
    spec.loader.exec_module(module)
    return module


def fake_comfy(user_dir: Path) -> None:
    """Only what the ledger needs: ComfyUI's user directory (the rest of the bridge falls back quietly)."""
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.get_user_directory = lambda: str(user_dir)  # type: ignore[attr-defined]
    sys.modules["folder_paths"] = folder_paths


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIO_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenario_api.emulator", "--queued", "0.02", "--warming-up", "0.02", "--running", "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    proc.stdout.readline()
    return proc, url


def fault_plan(rate: float) -> list[dict[str, Any]]:
    """Faults whose chances add up to about ``rate`` per request of each kind."""
    paid = {"dryRun": None}
    submit = [
        {"kind": "disconnect_after_accept"},
        {"kind": "status_after_accept", "status": 503, "retry_after": 0},
        {"kind": "status_after_accept", "status": 429, "retry_after": 0},
        {"kind": "status_after_accept", "status": 502},
        {"kind": "broken_body", "mode": "html"},
        {"kind": "broken_body", "mode": "no_job_id"},
        {"kind": "status", "status": 503, "retry_after": 0},
        {"kind": "status", "status": 429, "retry_after": 0},
        {"kind": "slow", "delay": 0.3},
    ]
    polls = [{"kind": "status", "status": 503}, {"kind": "slow", "delay": 0.2}]
    lists = [{"kind": "status", "status": 503}]
    files = [{"kind": "expired_url"}, {"kind": "truncated_download"}]
    plan = []
    for target, kinds, query in (
        ("POST /v1/generate/*", submit, paid),
        ("GET /v1/jobs/*", polls, None),
        ("GET /v1/jobs", lists, None),
        ("GET /cdn/*", files, None),
    ):
        for fault in kinds:
            item = {"target": target, "count": 100_000, "probability": rate / len(kinds), **fault}
            if query:
                item["query"] = query
            plan.append(item)
    return plan


def open_sockets() -> int:
    try:
        return sum(1 for fd in os.listdir("/proc/self/fd") if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"))
    except OSError:
        return -1


async def soak(pack: Any, url: str, jobs: int, parallel: int, rate: float, user_dir: Path) -> dict[str, Any]:
    control = httpx.Client(base_url=url.removesuffix("/v1"), trust_env=False, timeout=30)
    control.post("/_emulator/reset")
    r = control.post("/_emulator/faults", json=fault_plan(rate))
    r.raise_for_status()
    errors = sys.modules[f"{PACK}.scenario_api.errors"]
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    gate = asyncio.Semaphore(parallel)
    delivered: dict[str, str] = {}
    reported: dict[str, str] = {}
    bugs: dict[str, str] = {}

    async def one(i: int) -> None:
        prompt = f"soak {rate:.2f} job {i}"
        async with gate:
            try:
                _, job_ids, _ = await node.generate(
                    prompt=prompt,
                    model_id="flux.1-dev",
                    modality="canny",
                    modality_strength=1.0,
                    num_samples=1,
                    guidance=3.5,
                    num_inference_steps=28,
                    width=256,
                    height=256,
                    seed=1000 + i,
                    control_image_id="asset_demo_canny",
                    unique_id=str(i),
                )
                delivered[prompt] = job_ids
            except errors.ScenarioError as exc:
                reported[prompt] = str(exc)
            except Exception as exc:  # noqa: BLE001 - a bug: counted and shown
                bugs[prompt] = f"{type(exc).__name__}: {exc}"

    sockets_before = open_sockets()
    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(jobs)))
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.2)
    gc.collect()
    leaked_tasks = len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])
    leaked_sockets = max(0, open_sockets() - sockets_before)

    log = control.get("/_emulator/log").json()
    control.delete("/_emulator/faults")
    control.close()
    created: dict[str, list[str]] = {}
    for entry in log:
        if entry["method"] == "POST" and entry["path"].startswith("/v1/generate/") and entry.get("job_id"):
            body = entry.get("body") or {}
            created.setdefault(str(body.get("prompt")), []).append(entry["job_id"])
    ledger_mod = sys.modules[f"{PACK}.scenario_api.ledger"]
    with ledger_mod.Ledger(user_dir / "scenario" / "ledger.sqlite3") as lg:
        records = lg.recent(limit=100_000)
    in_ledger = {r.job_id for r in records if r.job_id} | {c for r in records for c in r.candidates}
    duplicates = sum(max(0, len(ids) - 1) for ids in created.values())
    lost = 0
    for prompt, ids in created.items():
        for job_id in ids:
            named = job_id in delivered.get(prompt, "") or job_id in reported.get(prompt, "")
            if not named and job_id not in in_ledger:
                lost += 1
    return {
        "rate": rate,
        "jobs": jobs,
        "parallel": parallel,
        "delivered": len(delivered),
        "reported": len(reported),
        "bugs": len(bugs),
        "created": sum(len(v) for v in created.values()),
        "lost": lost,
        "duplicates": duplicates,
        "leaked_tasks": leaked_tasks,
        "leaked_sockets": leaked_sockets,
        "seconds": round(elapsed, 1),
        "sample_report": next(iter(reported.values()), "")[:160],
        "sample_bug": next(iter(bugs.values()), "")[:160],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 jobs, 8 at once")
    parser.add_argument("--jobs", type=int, help="jobs per fault rate (default 200, quick 40)")
    parser.add_argument("--parallel", type=int, help="jobs at once (default 16, quick 8)")
    parser.add_argument("--rates", default="0.1,0.3", help="fault rates to run (default 0.1,0.3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per rate")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the pack's warnings while it runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL, stream=sys.stderr)
    jobs = args.jobs or (40 if args.quick else 200)
    parallel = args.parallel or (8 if args.quick else 16)
    proc, url = start_emulator()
    state = Path(tempfile.mkdtemp(prefix="scenario-soak-"))
    os.environ.update(
        SCENARIO_API_URL=url,
        SCENARIO_API_KEY=KEY,
        SCENARIO_API_SECRET=SECRET,
        SCENARIO_POLL_INTERVAL="0.05",
        SCENARIO_STATE_DIR=str(state / "cli"),
    )
    os.environ.pop("SCENARIO_PROJECT_ID", None)
    fake_comfy(state / "user")
    (state / "user").mkdir()
    pack = load_pack()
    bad = False
    try:
        for rate in (float(r) for r in args.rates.split(",")):
            result = asyncio.run(soak(pack, url, jobs, parallel, rate, state / "user"))
            bad |= bool(result["lost"] or result["duplicates"] or result["bugs"])
            if args.json:
                print(json.dumps(result))
                continue
            print(
                f"faults {rate:.0%}: {result['jobs']} jobs, {result['parallel']} at once, {result['seconds']} s | "
                f"delivered {result['delivered']}, reported {result['reported']}, lost {result['lost']}, "
                f"duplicates {result['duplicates']}, other errors {result['bugs']} | jobs created "
                f"{result['created']} | leaked tasks {result['leaked_tasks']}, sockets {result['leaked_sockets']}"
            )
            if result["sample_report"]:
                print(f"  first report: {result['sample_report']}")
            if result["sample_bug"]:
                print(f"  first other error: {result['sample_bug']}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"peak RSS: {peak / 1024:.0f} MiB" if sys.platform != "darwin" else f"peak RSS: {peak / 2**20:.0f} MiB")
    finally:
        sys.modules[f"{PACK}.nodes.job_ledger"].close_all()
        proc.terminate()
        proc.wait(10)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
