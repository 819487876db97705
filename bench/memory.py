"""Memory figure: Fetch Asset of 8 x 2048^2 results, peak RSS growth relative to the IMAGE + MASK it returns.

Each contender runs in its own child process (``bench.memprobe``) against one
emulator process, so no contender inherits another's heap; the harness trims
the heap before each repetition for all of them alike. "Held afterwards" is
what the process still holds once the call returned, beyond its outputs.
"""

from __future__ import annotations

import time

import httpx

from .common import DEMO_KEY, DEMO_SECRET, EmulatorProcess, Options, Row, Section, median, run_child


def _results(emu: EmulatorProcess, count: int, size: int) -> list[str]:
    """Asset ids of ``count`` rendered results (downloaded once, so the emulator's rendering is not measured)."""
    with httpx.Client(base_url=emu.url, auth=(DEMO_KEY, DEMO_SECRET), trust_env=False, timeout=120) as api:
        body = {
            "prompt": "memory bench",
            "modelId": "flux.1-dev",
            "modality": "canny",
            "controlImageId": "asset_demo_canny",
            "numSamples": count,
            "width": size,
            "height": size,
            "seed": 11,
            "numInferenceSteps": 28,
            "guidance": 3.5,
        }
        job_id = api.post("/generate/controlnet", json=body).json()["job"]["jobId"]
        while (job := api.get(f"/jobs/{job_id}").json()["job"])["status"] != "success":
            time.sleep(0.05)
        ids = job["metadata"]["assetIds"]
        for asset_id in ids:
            url = api.get(f"/assets/{asset_id}").json()["asset"]["url"]
            httpx.get(url, trust_env=False, timeout=120).raise_for_status()
    return ids


def run(opts: Options) -> Section:
    section = Section("memory")
    count, size = (2, 512) if opts.quick else (8, 2048)
    runs = 1 if opts.quick else opts.runs
    with EmulatorProcess() as emu:
        ids = _results(emu, count, size)
        methods = ("pack", "floor", "comfy")
        if opts.quick:  # one process for all: faster, figures not meaningful anyway
            out = run_child("memprobe", ",".join(methods), str(runs), emu.url, *ids)
        else:
            out = {m: run_child("memprobe", m, str(runs), emu.url, *ids)[m] for m in methods}
    tensors = out["pack"]["tensor_bytes"]
    image_only = tensors * 3 / 4  # IMAGE is 3 of the 4 floats per pixel

    def growth(m: str) -> float:
        return median(out[m]["growth"]) / tensors

    def held(m: str) -> float:
        return median(out[m]["held"]) / 2**20

    section.rows.append(
        Row(
            "memory",
            f"Fetch Asset, {count} x {size}^2: peak RSS growth / (IMAGE + MASK)",
            f"{growth('pack'):.2f}x ({growth('pack') * tensors / image_only:.2f}x IMAGE); "
            f"{held('pack'):.0f} MiB held afterwards",
            f"floor {growth('floor'):.2f}x, {held('floor'):.0f} MiB held; ComfyUI-style LoadImage "
            f"{growth('comfy'):.2f}x, {held('comfy'):.0f} MiB held",
            "<= 1.3x, memory released after the node returns",
            growth("pack") <= 1.3 and held("pack") <= 64,
        )
    )
    section.notes.append(
        f"memory: IMAGE + MASK = {tensors / 2**20:.0f} MiB; each contender in its own process, median of {runs}; "
        "'held' = RSS after the call minus RSS before minus the outputs."
    )
    return section
