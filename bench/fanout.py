"""Fan-out figures, through the real node classes: a batch of 8 maps in one node, 8 nodes in one prompt.

Jobs are 5 job-seconds (shares as in the polling section) on the emulator
with ``clock_scale`` = ``--fanout-scale`` (default 2: fixed costs such as
uploads, downloads and decoding stay real, so a larger speed-up would
overstate them). Every time is a ratio to one job through the same node in
the same run. Nodes run the way ComfyUI runs them: a prompt is one event loop
(``asyncio.run``), async nodes of one prompt run concurrently in it.

Baseline beside the batch figure: 8 jobs through the client at once
(``asyncio.gather`` of submit + wait + download), against 1 job.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import httpx

from . import images
from .common import DEMO_KEY, DEMO_SECRET, EmulatorProcess, Options, Row, Section, environ, median, ratio, settings_for
from .polling import SHARES

JOB_SECONDS = 5.0


def _pack() -> Any:
    from pack_loader import FakeComfy, load_pack

    for name, module in FakeComfy().modules.items():
        sys.modules.setdefault(name, module)
    return load_pack()


def node_kwargs(cls: type, **over: Any) -> dict[str, Any]:
    """Widget defaults from ``INPUT_TYPES`` (required inputs), overridden by ``over``."""
    kw: dict[str, Any] = {}
    for name, decl in cls.INPUT_TYPES()["required"].items():
        typ, opts = decl[0], (decl[1] if len(decl) > 1 else {})
        if "default" in opts:
            kw[name] = opts["default"]
        elif isinstance(typ, (list, tuple)) and typ:
            kw[name] = typ[0]
    kw.update(over)
    return kw


def _maps(count: int, size: int, seed: int) -> Any:
    import torch

    return torch.cat([images.as_image_tensor(images.edge_array(size, seed + i)) for i in range(count)])


async def _node_run(pack: Any, maps: Any, seed: int, size: int, **over: Any) -> Any:
    cls = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]
    node = cls()
    kw = node_kwargs(
        cls,
        prompt="fan-out bench",
        model_id="flux.1-dev",
        modality="canny",
        width=size,
        height=size,
        seed=seed,
        num_samples=1,
    )
    kw.update(over)
    if maps is not None:
        kw["control_image"] = maps
    return await getattr(node, cls.FUNCTION)(**kw)


def _clear_caches() -> None:
    """Each measured prompt starts like the first one of a process: no uploads known, limits read afresh."""
    from pack_loader import submodule

    submodule("scenario_api.uploads").UPLOADS.clear()
    submodule("scenario_api.limits").forget_limiters()


async def _max_stall(work: Any) -> float:
    """The longest the event loop went without running a 1 ms ticker while ``work`` ran (seconds)."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last - 0.001)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    try:
        await work()
    finally:
        done.set()
        await task
    return max(gaps) if gaps else 0.0


async def _pack_upload(pack: Any, image: Any) -> None:
    cls = pack.NODE_CLASS_MAPPINGS["ScenarioUploadAsset"]
    await getattr(cls(), cls.FUNCTION)(image=image, name="stall-bench")


async def _typical_upload(emu: EmulatorProcess, image: Any) -> None:
    """A typical API node: encode on the loop (float -> x*255 -> RGB PNG, default level -> base64), then POST."""
    from .codecs import anchor_encode

    url = anchor_encode(image)
    async with httpx.AsyncClient(base_url=emu.url, auth=(DEMO_KEY, DEMO_SECRET), trust_env=False, timeout=120) as c:
        (await c.post("/assets", json={"name": "stall-bench", "image": url})).raise_for_status()


class _PoolCounter:
    """Counts the pack's ``ScenarioClient`` instances (each owns its connection pools) created while active."""

    def __init__(self) -> None:
        from pack_loader import submodule

        self.cls = submodule("scenario_api.client").ScenarioClient
        self.count = 0
        self._orig = self.cls.__init__

    def __enter__(self) -> _PoolCounter:
        counter, orig = self, self._orig

        def init(client: Any, *a: Any, **kw: Any) -> None:
            counter.count += 1
            orig(client, *a, **kw)

        self.cls.__init__ = init
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cls.__init__ = self._orig


async def _client_jobs(emu: EmulatorProcess, count: int, size: int, seed: int, scale: float) -> None:
    from scenario_api import ControlNetRequest, PollPolicy, ScenarioClient

    async with ScenarioClient(settings_for(emu), poll_policy=PollPolicy().scaled(1.0 / scale)) as client:
        reqs = [
            ControlNetRequest(
                prompt="fan-out baseline",
                model_id="flux.1-dev",
                modality="canny",
                control_image_id="asset_demo_canny",
                width=size,
                height=size,
                seed=seed + i,
            )
            for i in range(count)
        ]
        await asyncio.gather(*(client.generate(r) for r in reqs))


def _timed_prompt(coro_factory: Any) -> float:
    _clear_caches()
    t0 = time.perf_counter()
    asyncio.run(coro_factory())
    return time.perf_counter() - t0


def run(opts: Options) -> Section:
    section = Section("fanout")
    scale = opts.fanout_scale
    runs = 1 if opts.quick else opts.runs
    size = 256 if opts.quick else 512
    pack = _pack()
    timing = {k: v * JOB_SECONDS for k, v in SHARES.items()}
    with (
        EmulatorProcess(clock_scale=scale, timing=timing) as emu,
        environ({**emu.env(), "SCENARIO_POLL_SCALE": f"{1.0 / scale:g}"}),
    ):
        one: list[float] = []
        batch: list[float] = []
        base_one: list[float] = []
        base_batch: list[float] = []
        limited: list[float] = []
        nodes8: list[float] = []
        refusals: list[int] = []
        pools: list[int] = []
        model_reads: list[int] = []
        emu.config(parallel_inferences=8)
        _timed_prompt(lambda: _node_run(pack, _maps(1, size, 0), 1, size))  # warm-up
        for r in range(runs):
            s = 100 * (r + 1)
            emu.config(parallel_inferences=8)
            one.append(_timed_prompt(lambda s=s: _node_run(pack, _maps(1, size, s), s, size)))
            batch.append(_timed_prompt(lambda s=s: _node_run(pack, _maps(8, size, s + 10), s, size)))
            base_one.append(_timed_prompt(lambda s=s: _client_jobs(emu, 1, size, s + 20, scale)))
            base_batch.append(_timed_prompt(lambda s=s: _client_jobs(emu, 8, size, s + 30, scale)))

            async def prompt_of_8(s: int = s) -> None:
                await asyncio.gather(*(_node_run(pack, _maps(1, size, s + 40 + i), s + 40 + i, size) for i in range(8)))

            emu.clear_log()
            with _PoolCounter() as counter:
                nodes8.append(_timed_prompt(prompt_of_8))
            pools.append(counter.count)
            model_reads.append(
                sum(1 for e in emu.log() if e["method"] == "GET" and e["path"].startswith("/v1/models/"))
            )

            emu.config(parallel_inferences=3)
            emu.clear_log()
            limited.append(_timed_prompt(lambda s=s: _node_run(pack, _maps(8, size, s + 60), s, size)))
            refusals.append(sum(1 for e in emu.log() if e["path"].startswith("/v1/generate/") and e["status"] == 429))

        # Requests per job with an explicit size and an asset id as the control map.
        emu.config(parallel_inferences=8)
        emu.clear_log()
        asyncio.run(_node_run(pack, None, 7, size, control_image_id="asset_demo_canny"))
        log = emu.log()
        size_reads = sum(1 for e in log if e["method"] == "GET" and e["path"] == "/v1/assets/asset_demo_canny")
        total = sum(1 for e in log if e["path"].startswith("/v1/"))

        # Event-loop stall while uploading a natural init image (other nodes of the prompt share that loop).
        photo = images.as_image_tensor(images.natural_array(512 if opts.quick else 2048, seed=3))
        stalls: list[float] = []
        typical_stalls: list[float] = []
        for _ in range(runs):
            _clear_caches()
            stalls.append(asyncio.run(_max_stall(lambda: _pack_upload(pack, photo))))
            typical_stalls.append(asyncio.run(_max_stall(lambda: _typical_upload(emu, photo))))

    t1, t8, b1, b8 = median(one), median(batch), median(base_one), median(base_batch)
    section.rows.append(
        Row(
            "fanout",
            f"Batch of 8 maps in one node, {JOB_SECONDS:g} s jobs, limit 8",
            f"{ratio(t8, t1):.2f}x one job ({t8:.2f} s vs {t1:.2f} s real)",
            f"8 jobs through the client at once: {ratio(b8, b1):.2f}x",
            "<= 1.2x one job",
            ratio(t8, t1) <= 1.2,
        )
    )
    section.rows.append(
        Row(
            "fanout",
            "The same batch, emulator parallel limit 3",
            f"finished in {ratio(median(limited), t1):.2f}x one job; {max(refusals)} answers of 429 (worst run)",
            "ideal: 3 waves = 3x one job",
            "finishes, <= 8 answers of 429",
            max(refusals) <= 8,
        )
    )
    section.rows.append(
        Row(
            "fanout",
            "8 generate nodes in one prompt",
            f"{ratio(median(nodes8), t1):.2f}x one job; {max(pools)} client(s) = connection pools, "
            f"{max(model_reads)} model look-ups",
            f"one job: {t1:.2f} s real",
            "<= 1.2x one job, one connection pool",
            ratio(median(nodes8), t1) <= 1.2 and max(pools) == 1,
        )
    )
    section.rows.append(
        Row(
            "fanout",
            "Requests per job, asset id as the map and an explicit size",
            f"{total} API requests; {size_reads} asset look-up(s) for the size",
            "needed: 0 look-ups",
            "no asset look-up",
            size_reads == 0,
        )
    )
    side = 512 if opts.quick else 2048
    section.rows.append(
        Row(
            "fanout",
            f"Event-loop stall while Upload Asset sends a natural {side}^2 image",
            f"{median(stalls) * 1000:.1f} ms longest stall",
            f"typical API node (encode on the loop): {median(typical_stalls) * 1000:.0f} ms",
            "a few ms per image",
            median(stalls) <= 0.010,
        )
    )
    section.notes.append(
        f"fanout: job clock x{scale:g} (a {JOB_SECONDS:g} s job runs {JOB_SECONDS / scale:.1f} s); {size}^2 maps "
        f"and results; median of {runs}."
    )
    return section
