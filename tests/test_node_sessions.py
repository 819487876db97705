"""One client per prompt (event loop): shared pools and model look-ups, never across loops; fan-out by account."""

from __future__ import annotations

import asyncio
import threading

from helpers import make_array
from pack_loader import image_tensor, submodule

pytest_plugins = ["pack_loader"]

GEN = "ScenarioControlNetGenerate"
SLOW = {"queued": 0.0, "warming_up": 0.0, "running": 0.6}


def widgets(**over):
    base = {
        "prompt": "a harbour at night",
        "model_id": "flux.1-dev",
        "modality": "canny",
        "modality_strength": 1.0,
        "num_samples": 1,
        "guidance": 3.5,
        "num_inference_steps": 30,
        "width": 0,
        "height": 0,
        "seed": 7,
    }
    base.update(over)
    return base


def paid(emulator):
    return [e for e in emulator.requests("POST", "/v1/generate/*") if e["query"].get("dryRun") != "true"]


def test_nodes_of_one_prompt_share_one_client_and_each_prompt_gets_its_own(node_env, comfy, pack):
    sessions = submodule("nodes.sessions")
    client_mod = submodule("scenario_api.client")
    made: list[object] = []
    original = client_mod.ScenarioClient.__init__

    def counting(self, *a, **kw):
        made.append(self)
        original(self, *a, **kw)

    client_mod.ScenarioClient.__init__ = counting
    try:

        async def prompt(seed: int) -> None:
            nodes = [pack.NODE_CLASS_MAPPINGS[GEN]() for _ in range(3)]
            await asyncio.gather(
                *(
                    n.generate(**widgets(seed=seed + i), control_image_id="asset_demo_canny")
                    for i, n in enumerate(nodes)
                )
            )
            await pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]().fetch("asset_demo_pose")
            assert sessions.open_clients() == 1

        asyncio.run(prompt(10))
        assert len(made) == 1 and sessions.open_clients() == 0  # closed when the prompt's loop ended
        assert len(node_env.requests("GET", "/v1/models/flux.1-dev")) == 1  # one look-up for three nodes
        thread = threading.Thread(target=asyncio.run, args=(prompt(20),))  # the next prompt, another thread
        thread.start()
        thread.join(30)
        assert len(made) == 2  # a new loop never reuses the old loop's client
        assert len(node_env.requests("GET", "/v1/models/flux.1-dev")) == 2
    finally:
        client_mod.ScenarioClient.__init__ = original


async def test_an_explicit_size_needs_no_asset_look_up(node_env, comfy, pack):
    await pack.NODE_CLASS_MAPPINGS[GEN]().generate(
        **widgets(width=512, height=512), control_image_id="asset_demo_canny"
    )
    assert node_env.requests("GET", "/v1/assets/asset_demo_canny") == []
    (job,) = paid(node_env)
    assert job["body"]["width"] == 512 and job["body"]["height"] == 512
    await pack.NODE_CLASS_MAPPINGS[GEN]().generate(**widgets(seed=8), control_image_id="asset_demo_canny")
    assert len(node_env.requests("GET", "/v1/assets/asset_demo_canny")) == 1  # size 0: read from the asset


async def test_a_batch_runs_every_job_at_once_when_the_account_allows(node_env, comfy, pack):
    node_env.config(timing=SLOW, parallel_inferences=6)
    maps = image_tensor(*(make_array(32, 32, "noise", seed=i) for i in range(6)))
    await pack.NODE_CLASS_MAPPINGS[GEN]().generate(**widgets(), control_image=maps)
    submits = paid(node_env)
    assert len(submits) == 6 and all(e["status"] == 200 for e in submits)
    first_done = min(e["time"] for e in node_env.requests("GET", "/v1/jobs/*")) + SLOW["running"]
    assert max(e["time"] for e in submits) < first_done  # all six were running together
    assert len(node_env.requests("GET", "/v1/teams/*/limits")) == 1


async def test_above_the_limit_jobs_queue_here_instead_of_being_refused(node_env, comfy, pack):
    node_env.config(timing={"queued": 0.0, "warming_up": 0.0, "running": 0.3}, parallel_inferences=2)
    maps = image_tensor(*(make_array(32, 32, "noise", seed=10 + i) for i in range(5)))
    images, job_ids, _ = await pack.NODE_CLASS_MAPPINGS[GEN]().generate(**widgets(), control_image=maps)
    assert images.shape[0] == 5 and len(job_ids.split(",")) == 5
    assert [e["status"] for e in paid(node_env)] == [200] * 5  # the team limit was read: no 429 at all


async def test_without_readable_team_limits_the_first_429_teaches_the_limit(node_env, comfy, pack):
    node_env.config(timing={"queued": 0.0, "warming_up": 0.0, "running": 0.3}, parallel_inferences=2)
    node_env.config(team_limits_readable=False)
    maps = image_tensor(*(make_array(32, 32, "noise", seed=20 + i) for i in range(6)))
    images, _, _ = await pack.NODE_CLASS_MAPPINGS[GEN]().generate(**widgets(), control_image=maps)
    assert images.shape[0] == 6
    statuses = [e["status"] for e in paid(node_env)]
    assert statuses.count(200) == 6 and statuses.count(429) <= 6  # the refused ones queued, then went through
    limiter = submodule("scenario_api.limits").limiter_for(
        f"{node_env.url}|{submodule('scenario_api.config').Credentials('test-key', 'x').account_id}"
    )
    assert limiter.limit == 2 and limiter.source == "429" and limiter.active == 0


def test_the_quote_placeholder_is_a_valid_gray_png_written_out_not_encoded_at_import(pack):
    import base64
    import io

    import numpy as np
    from PIL import Image

    url = submodule("nodes.web_api").PLACEHOLDER_IMAGE
    data = base64.b64decode(url.partition(",")[2])
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (8, 8) and np.all(np.asarray(im.convert("L")) == 128)
