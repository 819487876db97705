"""A secret scan over everything a run leaves behind: DEBUG logs, node status texts, exception texts
and reprs, the workflow / prompt / history data, image bytes and metadata, the emulator's record of
what was sent, and the job ledger's files. Neither the API secret nor a signed-URL credential may
appear in any of them."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest
from helpers import make_array
from pack_loader import image_tensor, submodule
from PIL import Image

pytest_plugins = ["pack_loader"]

SECRET = "test-secret-value-123"  # what the session emulator accepts
WRONG_SECRET = "wrong-secret-Zq81-never-shown"
SIGNED_PARTS = ("Signature=", "Policy=", "Key-Pair-Id=")
SUBMIT = "POST /v1/generate/*"
PAID = {"dryRun": None}

WIDGETS = {
    "prompt": "a secretive lighthouse",
    "model_id": "flux.1-dev",
    "modality": "canny",
    "modality_strength": 1.0,
    "num_samples": 2,
    "guidance": 3.5,
    "num_inference_steps": 28,
    "width": 0,
    "height": 0,
    "seed": 5,
}


SIGNED_VALUE = re.compile(r"(Signature|Policy|Key-Pair-Id)=(?!<redacted>)[^&\s\"']+")


def leaks(text: str) -> list[str]:
    """The secrets in ``text``, and signed-URL parameters with their values (a redacted name is fine)."""
    found = [s for s in (SECRET, WRONG_SECRET) if s in text]
    found += [m.group(0)[:40] for m in SIGNED_VALUE.finditer(text)]
    return found


async def test_nothing_a_run_leaves_behind_holds_a_secret(node_env, comfy, pack, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    errors = submodule("scenario_api.errors")
    node = pack.NODE_CLASS_MAPPINGS["ScenarioControlNetGenerate"]()
    control = image_tensor(make_array(64, 64))
    said: list[str] = []
    outputs: list[object] = []

    # 1. delivered runs through lost replies, broken bodies, after-accept 503s and bad downloads
    node_env.faults(
        {"target": SUBMIT, "query": PAID, "kind": "disconnect_after_accept"},
        {"target": SUBMIT, "query": PAID, "kind": "broken_body", "mode": "html"},
        {"target": SUBMIT, "query": PAID, "kind": "status_after_accept", "status": 503, "retry_after": 0},
        {"target": "GET /cdn/*", "kind": "expired_url"},
        {"target": "GET /cdn/*", "kind": "truncated_download"},
    )
    for seed in (5, 6, 7):
        outputs.append(await node.generate(**{**WIDGETS, "seed": seed}, control_image=control, unique_id="3"))
    # 2. runs that fail: a failed job, a refused request, a wrong secret
    node_env.fault(target=SUBMIT, query=PAID, kind="job_failure", error="Generation failed")
    node_env.fault(target=SUBMIT, query=PAID, kind="status", status=400, count=1)
    failures = []
    for seed in (8, 9):
        with pytest.raises(errors.ScenarioError) as info:
            await node.generate(**{**WIDGETS, "seed": seed}, control_image=control, unique_id="3")
        failures.append(info.value)
    monkeypatch.setenv("SCENARIO_API_SECRET", WRONG_SECRET)
    with pytest.raises(errors.AuthenticationError) as info:
        await node.generate(**{**WIDGETS, "seed": 10}, control_image=control, unique_id="3")
    failures.append(info.value)
    monkeypatch.setenv("SCENARIO_API_SECRET", SECRET)

    for exc in failures:
        chain, seen = exc, set()
        while chain is not None and id(chain) not in seen:
            seen.add(id(chain))
            said += [str(chain), repr(chain), repr(chain.args)]
            chain = chain.__cause__ or chain.__context__
    said.append(caplog.text)
    said += [text for _, text in comfy.texts]
    # what ComfyUI stores: the workflow / prompt (widget values) and the history (node outputs)
    said.append(json.dumps({"3": {"class_type": "ScenarioControlNetGenerate", "inputs": WIDGETS}}))
    said.append(json.dumps(node.INPUT_TYPES(), default=str))
    said += [repr(o[1:]) for o in outputs]
    # what was sent: bodies and queries in the emulator's log (the Authorization header is never logged)
    said.append(json.dumps(node_env.log()))
    # the objects a user might print
    settings = submodule("nodes.credentials").resolve_settings()
    async with pack.scenario_api.ScenarioClient(settings) as client:
        said += [repr(settings), str(settings), repr(client), repr(settings.credentials)]
    ledger_path = Path(comfy.user_dir) / "scenario" / "ledger.sqlite3"
    with pack.scenario_api.ledger.Ledger(ledger_path) as lg:
        said += [repr(lg)] + [repr(r) for r in lg.recent(limit=100)]
    submodule("nodes.job_ledger").close_all()

    text = "\n".join(said)
    assert leaks("https://cdn/x.png?Expires=1&Signature=abc") and leaks(SECRET)  # the scanner itself works
    assert not leaks("GET /cdn/x.png?Expires=1&Signature=<redacted>")
    assert leaks(text) == [], leaks(text)
    # image bytes and their metadata: what the emulator sent, decoded as ComfyUI would save it
    with node_env.api() as api:
        for asset_id in outputs[0][2].split(","):
            url = api.get(f"/assets/{asset_id}").json()["asset"]["url"]
            data = __import__("httpx").get(url, trust_env=False).content
            assert leaks(data.decode("latin-1")) == []
            with Image.open(io.BytesIO(data)) as im:
                assert leaks(json.dumps({k: str(v) for k, v in im.info.items()})) == []
    # the ledger's own files, byte for byte
    for f in ledger_path.parent.glob("ledger.sqlite3*"):
        raw = f.read_bytes()
        for needle in (SECRET, WRONG_SECRET, *SIGNED_PARTS):
            assert needle.encode() not in raw, (f.name, needle)
    assert len(node_env.requests("POST", "/v1/generate/*")) >= 5  # the runs did reach Scenario
    assert all(not e["auth_header_present"] for e in node_env.requests("GET", "/cdn/*"))
