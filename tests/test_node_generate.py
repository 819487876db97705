"""The generate nodes' FUNCTION against the emulator: bodies, fan-out, sizes, uploads, budget, progress."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime

import numpy as np
import pytest
import torch
from helpers import make_array
from pack_loader import image_tensor, submodule

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

GEN = "ScenarioControlNetGenerate"
I2I = "ScenarioImg2ImgControlNet"


def widgets(**over):
    base = {
        "prompt": "a lighthouse at dusk",
        "model_id": "flux.1-dev",
        "modality": "canny",
        "modality_strength": 1.0,
        "num_samples": 1,
        "guidance": 3.5,
        "num_inference_steps": 30,
        "width": 0,
        "height": 0,
        "seed": 1234,
    }
    base.update(over)
    return base


def paid(emulator, dry: bool = False):
    """Generate POSTs in the log; ``dry`` selects the dry runs instead of the paid ones."""
    out = []
    for e in emulator.requests("POST", "/v1/generate/*"):
        is_dry = str(e.get("query", {}).get("dryRun", "")).lower() == "true"
        if is_dry == dry:
            out.append(e)
    return out


async def test_txt2img_body_shape_and_result(node_env, comfy, pack, caplog):
    caplog.set_level(logging.INFO, logger="scenario_controlnet")
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    # 203 x 117 is not a multiple of 8: the derived size is fitted to 200 x 120 (aspect kept).
    control = image_tensor(make_array(203, 117, "edges"))
    images, job_id, asset_ids = await node.generate(
        **widgets(num_samples=2, modality="depth", modality_strength=0.6, seed=99), control_image=control, unique_id="7"
    )
    assert images.dtype == torch.float32 and images.device.type == "cpu"
    assert tuple(images.shape) == (2, 120, 200, 3)
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0 and float(images.std()) > 0
    assert job_id.startswith("job_") and "," not in job_id
    assert len(asset_ids.split(",")) == 2 and all(a.startswith("asset_") for a in asset_ids.split(","))

    [submit] = paid(node_env)
    body = submit["body"]
    assert body["modality"] == "depth:0.6"
    assert body["seed"] == 99 and body["numSamples"] == 2
    assert (body["width"], body["height"]) == (200, 120)
    assert body["controlImageId"].startswith("asset_") and "controlImage" not in body
    assert "scheduler" not in body and "controlStart" not in body and "negativePrompt" not in body
    # the job id is logged at INFO as soon as it is known
    assert any(f"Scenario job {job_id} submitted" in r.getMessage() for r in caplog.records)


async def test_optional_fields_are_sent_when_set(node_env, comfy, pack):
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    control = image_tensor(make_array(64, 64))
    await node.generate(
        **widgets(width=512, height=256),
        control_image=control,
        negative_prompt="blurry",
        modalities="pose:0.5",
        control_start=0.1,
        control_end=0.6,
    )
    [submit] = paid(node_env)
    body = submit["body"]
    assert body["modality"] == "pose:0.5"  # the override replaces modality + strength
    assert (body["width"], body["height"]) == (512, 256)
    assert body["negativePrompt"] == "blurry"
    assert body["controlStart"] == pytest.approx(0.1) and body["controlEnd"] == pytest.approx(0.6)


async def test_sd_model_scheduler_and_one_side_derived(node_env, comfy, pack):
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    control = image_tensor(make_array(300, 150))
    await node.generate(
        **widgets(model_id="stable-diffusion-xl-base-1.0", modality="seg", guidance=7.0, width=1024, height=0),
        control_image=control,
        scheduler="EulerDiscreteScheduler",
    )
    body = paid(node_env)[0]["body"]
    assert body["scheduler"] == "EulerDiscreteScheduler"
    assert (body["width"], body["height"]) == (1024, 512)  # height follows the control image's 2:1 aspect


async def test_fan_out_runs_one_job_per_image_in_order(node_env, comfy, pack):
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    maps = [make_array(96, 64, p) for p in ("shapes", "checker", "gradient")]
    images, job_ids, asset_ids = await node.generate(
        **widgets(seed=5), control_image=image_tensor(*maps), unique_id="3"
    )
    assert tuple(images.shape) == (3, 64, 96, 3)
    assert len(job_ids.split(",")) == 3 and len(set(job_ids.split(","))) == 3
    assert len(asset_ids.split(",")) == 3
    assert len(paid(node_env)) == 3
    assert len(node_env.requests("POST", "/v1/assets")) == 3

    # Each slot must be the result for its own map: a single run per map (same seed, same cached
    # upload -> identical request) renders identical pixels.
    for i, m in enumerate(maps):
        single, _, _ = await pack.NODE_CLASS_MAPPINGS[GEN]().generate(**widgets(seed=5), control_image=image_tensor(m))
        assert torch.equal(single[0], images[i]), f"slot {i} is not the result of map {i}"
    assert not torch.equal(images[0], images[1])
    assert len(node_env.requests("POST", "/v1/assets")) == 3  # no re-upload for the single runs


async def test_fan_out_by_asset_ids_and_metadata_size(node_env, comfy, pack):
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    # demo assets are 512 x 512; two ids -> two jobs, size read from the asset metadata
    images, job_ids, _ = await node.generate(**widgets(), control_image_id="asset_demo_canny, asset_demo_pose")
    assert len(job_ids.split(",")) == 2
    bodies = [e["body"] for e in paid(node_env)]
    assert sorted(b["controlImageId"] for b in bodies) == ["asset_demo_canny", "asset_demo_pose"]
    assert all((b["width"], b["height"]) == (512, 512) for b in bodies)
    assert not node_env.requests("POST", "/v1/assets")
    assert tuple(images.shape) == (2, 512, 512, 3)


async def test_mixed_result_sizes_are_padded_centred(node_env, comfy, pack):
    node_env.config(mixed_sizes=True)
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    images, _, asset_ids = await node.generate(
        **widgets(num_samples=2, width=128, height=128), control_image=image_tensor(make_array(64, 64))
    )
    # the emulator renders sample 1 at 64 x 128: it is padded to 128 x 128, centred, black padding
    assert tuple(images.shape) == (2, 128, 128, 3)
    assert float(images[1, :, :32].abs().max()) == 0.0 and float(images[1, :, 96:].abs().max()) == 0.0
    assert float(images[1, :, 32:96].max()) > 0.0

    fetch = pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]()
    fetched, masks = await fetch.fetch(asset_ids)
    assert torch.equal(fetched, images)
    assert tuple(masks.shape) == (2, 128, 128)
    assert float(masks[0].min()) == 1.0  # full-size result: all real pixels
    assert float(masks[1, :, :32].max()) == 0.0 and float(masks[1, :, 32:96].min()) == 1.0


async def test_upload_reused_across_runs_and_nodes(node_env, comfy, pack):
    control = image_tensor(make_array(64, 64, "shapes"))
    a = pack.NODE_CLASS_MAPPINGS[GEN]()
    b = pack.NODE_CLASS_MAPPINGS[I2I]()
    await a.generate(**widgets(seed=1), control_image=control)
    await a.generate(**widgets(seed=2), control_image=control)
    await b.generate(**widgets(seed=3), strength=0.5, control_image=control, image_id="asset_demo_pose")
    assert len(node_env.requests("POST", "/v1/assets")) == 1
    ids = {e["body"]["controlImageId"] for e in paid(node_env)}
    assert len(ids) == 1 and len(paid(node_env)) == 3


async def test_identical_images_in_one_batch_upload_once(node_env, comfy, pack):
    m = make_array(64, 64, "checker")
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    _, job_ids, _ = await node.generate(**widgets(), control_image=image_tensor(m, m, m))
    assert len(job_ids.split(",")) == 3
    assert len(node_env.requests("POST", "/v1/assets")) == 1


async def test_stale_cached_upload_is_uploaded_again(node_env, comfy, pack):
    control = image_tensor(make_array(64, 64, "gradient"))
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    await node.generate(**widgets(), control_image=control)
    node_env.reset()  # the emulator forgets uploaded assets, like a deletion in the web app
    await node.generate(**widgets(seed=8), control_image=control)
    assert len(node_env.requests("POST", "/v1/assets")) == 1  # log was reset: this is the re-upload
    assert len(paid(node_env)) == 1


async def test_img2img_pairs_init_images(node_env, comfy, pack):
    node = pack.NODE_CLASS_MAPPINGS[I2I]()
    controls = image_tensor(make_array(64, 64, "shapes"), make_array(64, 64, "checker"))
    init = image_tensor(np.stack([make_array(64, 64, "gradient")] * 3, axis=-1))
    images, job_ids, _ = await node.generate(**widgets(), strength=0.4, control_image=controls, image=init)
    assert tuple(images.shape) == (2, 64, 64, 3) and len(job_ids.split(",")) == 2
    bodies = [e["body"] for e in paid(node_env)]
    assert all(e["path"] == "/v1/generate/controlnet-img2img" for e in paid(node_env))
    assert all(b["strength"] == pytest.approx(0.4) for b in bodies)
    assert len({b["image"] for b in bodies}) == 1 and bodies[0]["image"].startswith("asset_")
    assert len({b["controlImageId"] for b in bodies}) == 2


async def test_budget_refusal_submits_nothing(node_env, comfy, pack):
    errors = submodule("scenario_api.errors")
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    control = image_tensor(make_array(64, 64), make_array(64, 64, "checker"))
    with pytest.raises(errors.BudgetExceededError) as info:
        await node.generate(**widgets(num_samples=4), control_image=control, max_creative_units=0.01)
    text = str(info.value)
    assert text.startswith("Scenario: ") and "max_creative_units" in text and "Nothing was submitted" in text
    assert "2 jobs" in text
    assert len(paid(node_env, dry=True)) == 2  # one quote per fan-out job
    assert paid(node_env) == []


async def test_budget_within_limit_quotes_then_runs(node_env, comfy, pack):
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    await node.generate(**widgets(), control_image=image_tensor(make_array(64, 64)), max_creative_units=10_000)
    entries = [e for e in node_env.log() if e["path"].startswith("/v1/generate/")]
    assert [str(e.get("query", {}).get("dryRun", "")).lower() == "true" for e in entries] == [True, False]


async def test_status_text_and_progress_bar(node_env, comfy, pack):
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    _, job_id, _ = await node.generate(**widgets(), control_image=image_tensor(make_array(64, 64)), unique_id="42")
    texts = [t for nid, t in comfy.texts if nid == "42"]
    assert texts, "no status text was sent"
    assert any(job_id in t for t in texts)
    assert "done" in texts[-1] and "CU" in texts[-1] and "queued" in texts[-1]
    assert comfy.bar_updates and comfy.bar_updates[-1] == ("42", 100.0, 100)
    assert all(nid == "42" for nid, _, _ in comfy.bar_updates)


async def test_status_text_is_throttled_while_the_bar_rises(node_env, comfy, pack):
    # Polls every 0.05 s (node_env) during a ~3 s generation: the status line must not follow every poll.
    node_env.config(timing={"queued": 0.05, "warming_up": 0.05, "running": 3.0})
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    started = time.monotonic()
    _, job_id, _ = await node.generate(**widgets(), control_image=image_tensor(make_array(64, 64)), unique_id="8")
    duration = time.monotonic() - started
    polls = node_env.requests("GET", f"/v1/jobs/{job_id}")
    status_texts = [t for nid, t in comfy.texts if nid == "8" and job_id in t]
    generating = [t for t in status_texts if "generating" in t]
    assert len(polls) >= 20  # the client did poll fast...
    assert 2 <= len(generating) <= duration + 2, generating  # ...but the line changed about once a second
    assert len(status_texts) <= duration + 4  # plus the forced ones: submitted, downloading, done
    values = [v for nid, v, _ in comfy.bar_updates if nid == "8"]
    assert values == sorted(values) and values[-1] == 100.0
    assert len({v for v in values if 0 < v < 100}) >= 2, values  # real intermediate progress


async def test_fan_out_jobs_overlap(node_env, comfy, pack):
    node_env.config(timing={"queued": 0.05, "warming_up": 0.05, "running": 1.0})
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    maps = [make_array(64, 64, p) for p in ("shapes", "checker", "gradient")]
    _, job_ids, _ = await node.generate(**widgets(), control_image=image_tensor(*maps))
    ids = job_ids.split(",")
    assert len(ids) == 3

    def when(iso: str) -> datetime:
        return datetime.fromisoformat(iso.replace("Z", "+00:00"))

    with node_env.api() as api:
        jobs = [api.get(f"/jobs/{j}").json()["job"] for j in ids]
    created = [when(j["createdAt"]) for j in jobs]
    finished = [when(next(h["date"] for h in j["statusHistory"] if h["status"] == "success")) for j in jobs]
    # every job was submitted before the first one finished: they ran at the same time, not one after another
    assert max(created) < min(finished), (created, finished)
    submit_times = [e["time"] for e in paid(node_env)]
    assert len(submit_times) == 3 and max(submit_times) < min(f.timestamp() for f in finished)


async def test_job_failure_surfaces_reason_and_hint(node_env, comfy, pack):
    errors = submodule("scenario_api.errors")
    node_env.fault(target="POST /v1/generate/*", kind="job_failure", error="NSFW content detected", hint="Rephrase")
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    with pytest.raises(errors.JobFailedError) as info:
        await node.generate(**widgets(), control_image=image_tensor(make_array(64, 64)))
    text = str(info.value)
    assert text.startswith("Scenario: ") and "NSFW content detected" in text and "Rephrase" in text
    assert info.value.job_id and info.value.job_id in text


async def test_fan_out_failure_cancels_the_sibling_jobs(node_env, comfy, pack):
    errors = submodule("scenario_api.errors")
    node_env.config(timing={"queued": 0.05, "warming_up": 0.05, "running": 1.5})
    node_env.fault(target="POST /v1/generate/*", kind="job_failure", count=1, error="boom")
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    control = image_tensor(make_array(64, 64), make_array(64, 64, "checker"), make_array(64, 64, "gradient"))
    with pytest.raises(errors.JobFailedError):
        await node.generate(**widgets(), control_image=control)
    cancels = node_env.requests("POST", "/v1/jobs/*/action")
    assert len(paid(node_env)) == 3
    assert len(cancels) == 2 and all(c["body"] == {"action": "cancel"} for c in cancels)


async def test_generation_timeout_keeps_the_job_and_points_to_poll_job(node_env, comfy, pack, monkeypatch):
    errors = submodule("scenario_api.errors")
    monkeypatch.setenv("SCENARIO_JOB_TIMEOUT", "1")
    node_env.fault(target="POST /v1/generate/*", kind="stuck_job")
    node = pack.NODE_CLASS_MAPPINGS[GEN]()
    with pytest.raises(errors.ScenarioTimeoutError) as info:
        await node.generate(**widgets(), control_image=image_tensor(make_array(64, 64)))
    text = str(info.value)
    assert text.startswith("Scenario: ") and info.value.job_id in text and "Poll Job" in text
    assert node_env.requests("POST", "/v1/jobs/*/action") == []  # not cancelled: recoverable later


async def test_two_nodes_running_concurrently_share_one_upload(node_env, comfy, pack):
    control = image_tensor(make_array(64, 64, "noise"))
    a, b = pack.NODE_CLASS_MAPPINGS[GEN](), pack.NODE_CLASS_MAPPINGS[GEN]()
    await asyncio.gather(
        a.generate(**widgets(seed=1), control_image=control, unique_id="1"),
        b.generate(**widgets(seed=2), control_image=control, unique_id="2"),
    )
    assert len(node_env.requests("POST", "/v1/assets")) == 1
    assert len(paid(node_env)) == 2


async def test_tensor_conversions_run_off_the_event_loop(node_env, comfy, pack, monkeypatch):
    # Converting a large IMAGE batch (and stacking large results) is CPU work: it must run in a worker
    # thread, never on the loop other nodes' jobs share. Results stay the same.
    tensors = submodule("nodes.tensors")
    loop_thread = threading.get_ident()
    seen: dict[str, list[int]] = {"image_to_arrays": [], "decode_to_tensors": []}

    def spy(name):
        real = getattr(tensors, name)

        def wrapper(*args, **kwargs):
            seen[name].append(threading.get_ident())
            return real(*args, **kwargs)

        return wrapper

    for name in seen:
        monkeypatch.setattr(tensors, name, spy(name))
    control = image_tensor(make_array(64, 64, "shapes"), make_array(64, 64, "checker"))
    images, _, asset_ids = await pack.NODE_CLASS_MAPPINGS[GEN]().generate(**widgets(), control_image=control)
    assert tuple(images.shape) == (2, 64, 64, 3) and images.dtype == torch.float32
    fetched, masks = await pack.NODE_CLASS_MAPPINGS["ScenarioFetchAsset"]().fetch(asset_ids)
    assert torch.equal(fetched, images) and float(masks.min()) == 1.0
    (uploaded,) = await pack.NODE_CLASS_MAPPINGS["ScenarioUploadAsset"]().upload(control, "spy")
    assert len(uploaded.split(",")) == 2
    assert len(seen["image_to_arrays"]) == 2 and len(seen["decode_to_tensors"]) == 2
    assert loop_thread not in seen["image_to_arrays"] + seen["decode_to_tensors"]
