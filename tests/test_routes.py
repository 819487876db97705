"""The frontend's server routes (nodes/routes.py, nodes/web_api.py) and what web/*.js says about them.

The route logic (nodes/web_api.py) is plain async functions, tested here against the emulator
over real loopback HTTP; the aiohttp wrappers get their own test when aiohttp
is importable (ComfyUI ships it). Here the JavaScript is only read as text:
which node types it names, which routes and settings it uses. Its behaviour
(serialization of the status widget, debounced quotes, modality narrowing,
syntax) is tested under Node's own test runner in tests/js/*.test.mjs, with
fake ComfyUI ``app``/``api`` modules.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from pack_loader import submodule

from scenario_api import spec

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
OUR_NODE_TYPES = {"ScenarioControlNetGenerate", "ScenarioImg2ImgControlNet"}
# The jobs panel adds Fetch Asset nodes (it never hooks them).
NAMED_NODE_TYPES = OUR_NODE_TYPES | {"ScenarioFetchAsset"}
TEST_SECRET = "test-secret-value-123"


@pytest.fixture
def web_api(env_for_emulator: Any) -> Any:
    """The answers behind the routes (nodes/web_api.py), with an empty model cache."""
    module = submodule("nodes.web_api")
    module.clear_model_cache()
    yield module
    module.clear_model_cache()


@pytest.fixture
def routes(web_api: Any) -> Any:
    """The aiohttp wiring and error mapping (nodes/routes.py)."""
    return submodule("nodes.routes")


def widget_values(**overrides: Any) -> dict[str, Any]:
    """What web/scenario.js sends for a fresh ControlNet Generate node."""
    values = {
        "prompt": "a house",
        "model_id": "flux.1-dev",
        "modality": "canny",
        "modality_strength": 1.0,
        "modalities": "",
        "num_samples": 1,
        "guidance": 3.5,
        "num_inference_steps": 30,
        "width": 0,
        "height": 0,
        "seed": 42,
        "scheduler": "default",
        "control_start": -1,
        "control_end": -1,
        "img2img": False,
        "batch": 1,
    }
    values.update(overrides)
    return values


def paid_or_quote_calls(emulator: Any) -> list[dict[str, Any]]:
    return emulator.requests("POST", "/v1/generate/*")


async def expect_error(routes: Any, coro: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(Exception) as info:
        await coro
    return routes.error_payload(info.value)


# --------------------------------------------------------------------------- GET /scenario/models/{id}


async def test_model_info_describes_a_flux_model(web_api: Any, emulator: Any) -> None:
    info = await web_api.model_info("flux.1-dev")
    assert info["model_id"] == "flux.1-dev"
    assert info["family"] == spec.FLUX and info["type"] == "flux.1" and info["custom"] is False
    assert info["modalities"] == list(spec.FLUX_MODALITIES)
    assert info["max_modalities"] == 1
    assert info["guidance_range"] == [0.0, 10.0]
    assert info["size_range"]["width"] == [64, 2048] and info["size_range"]["multiple_of"] == 8
    assert info["controlnet"] is True


async def test_model_info_includes_presets_for_sd_families(web_api: Any) -> None:
    sdxl = await web_api.model_info("stable-diffusion-xl-base-1.0")
    assert sdxl["family"] == spec.SDXL
    assert sdxl["modalities"] == list(spec.SDXL_MODALITIES) + ["character", "landscape"]
    assert sdxl["max_modalities"] == 3 and sdxl["size_range"]["width"] == [512, 2048]
    sd15 = await web_api.model_info("stable-diffusion-v1-5")
    assert "interior" in sd15["modalities"] and sd15["size_range"]["height"] == [64, 1024]
    assert sd15["guidance_range"] == [0.0, 20.0]


async def test_custom_model_offers_no_modality_and_says_why(web_api: Any) -> None:
    info = await web_api.model_info("model_demo-custom-txt2img")  # custom, without the controlnet capability
    assert info["family"] == spec.CUSTOM and info["custom"] is True
    assert info["modalities"] == [] and info["controlnet"] is False
    assert "custom" in info["note"]


async def test_custom_controlnet_model_offers_the_flux_modalities(web_api: Any) -> None:
    info = await web_api.model_info("model_bfl-flux-1-dev")
    assert info["family"] == spec.CUSTOM and info["custom"] is True and info["controlnet"] is True
    # issue 8: the choices are the model's declared controlModality values (as recorded: no 'sketch')
    assert info["modalities"] == ["canny", "tile", "depth", "blur", "pose", "gray", "low-quality"]
    assert info["max_modalities"] == 1 and info["modality_used"] is True
    assert info["size_range"] == {"width": [128, 2048], "height": [128, 2048], "multiple_of": 16}
    assert info["path"] == "/generate/custom/model_bfl-flux-1-dev" and "note" not in info


async def test_model_info_is_cached_per_process(web_api: Any, emulator: Any) -> None:
    first = await web_api.model_info("flux.1-dev")
    first["modalities"].append("mutated by a caller")
    second = await web_api.model_info("flux.1-dev")
    assert len(emulator.requests("GET", "/v1/models/flux.1-dev")) == 1
    assert "mutated by a caller" not in second["modalities"]
    web_api.clear_model_cache()
    await web_api.model_info("flux.1-dev")
    assert len(emulator.requests("GET", "/v1/models/flux.1-dev")) == 2


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "flux..1", "x" * 200, None, 5])
async def test_malformed_model_id_is_refused_before_any_request(
    web_api: Any, routes: Any, emulator: Any, bad: Any
) -> None:
    status, body = await expect_error(routes, web_api.model_info(bad))
    assert status == 400 and body["code"] == "validation" and body["field"] == "model_id"
    assert "model_id" in body["error"] and "flux.1-dev" in body["error"]
    assert emulator.log() == []


async def test_unknown_model_answers_404(web_api: Any, routes: Any) -> None:
    status, body = await expect_error(routes, web_api.model_info("no-such-model"))
    assert status == 404 and body["code"] == "not_found"
    assert "no-such-model" in body["error"]


async def test_missing_credentials_answers_400_with_help(
    web_api: Any, routes: Any, emulator: Any, monkeypatch: Any
) -> None:
    monkeypatch.delenv("SCENARIO_API_KEY")
    monkeypatch.delenv("SCENARIO_API_SECRET")
    status, body = await expect_error(routes, web_api.model_info("flux.1-dev"))
    assert status == 400 and body["code"] == "configuration"
    assert "SCENARIO_API_KEY" in body["error"] and "credentials.json" in body["error"]
    status, body = await expect_error(routes, web_api.quote(widget_values()))
    assert status == 400 and "SCENARIO_API_SECRET" in body["error"]
    assert emulator.log() == []


async def test_wrong_key_is_not_reported_as_a_comfyui_login(web_api: Any, routes: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("SCENARIO_API_SECRET", "wrong-secret-456")
    status, body = await expect_error(routes, web_api.model_info("flux.1-dev"))
    assert status == 400 and body["code"] == "auth"
    assert "wrong-secret-456" not in json.dumps(body)
    assert "Please login" not in body["error"]


# --------------------------------------------------------------------------- POST /scenario/quote


async def test_quote_is_a_dry_run_priced_per_job(web_api: Any, emulator: Any) -> None:
    answer = await web_api.quote(widget_values(num_samples=2, batch=3))
    calls = paid_or_quote_calls(emulator)
    assert len(calls) == 1
    call = calls[0]
    assert call["path"] == "/v1/generate/controlnet" and call["query"].get("dryRun") == "true"
    assert call["status"] == 269
    body = call["body"]
    # width/height 0 are priced at 512; the control map is the placeholder PNG.
    assert body["width"] == 512 and body["height"] == 512 and body["numSamples"] == 2
    assert body["modality"] == "canny:1" and "controlImage" in body and "image" not in body
    # emulator price: 5 CU x 2 samples x 30/28 steps x 512²/1024²
    assert answer["per_job"] == pytest.approx(round(5 * 2 * 30 / 28 / 4, 2))
    assert answer["jobs"] == 3 and answer["creative_units"] == pytest.approx(3 * answer["per_job"])
    assert answer["priced_size"] == [512, 512]  # the line says which size a "from the map" price is for
    with emulator.api() as api:
        assert api.get("/jobs").json()["jobs"] == []  # nothing was generated


async def test_quote_img2img_and_sd_options(web_api: Any, emulator: Any) -> None:
    answer = await web_api.quote(
        widget_values(
            model_id="stable-diffusion-v1-5",
            modality="depth",
            modality_strength=0.5,
            width=512,
            height=768,
            scheduler="EulerDiscreteScheduler",
            guidance=7.5,
            strength=0.6,
            img2img=True,
        )
    )
    (call,) = paid_or_quote_calls(emulator)
    assert call["path"] == "/v1/generate/controlnet-img2img" and call["query"].get("dryRun") == "true"
    body = call["body"]
    assert body["modality"] == "depth:0.5" and body["strength"] == 0.6 and "image" in body
    assert body["scheduler"] == "EulerDiscreteScheduler" and body["height"] == 768
    assert answer["per_job"] > 0 and answer["jobs"] == 1
    assert "priced_size" not in answer  # an explicit size is priced as given


async def test_quote_sends_flux_control_window_only_when_set(web_api: Any, emulator: Any) -> None:
    await web_api.quote(widget_values(control_start=0.1, control_end=0.8, modalities="depth:0.4"))
    (call,) = paid_or_quote_calls(emulator)
    assert call["body"]["controlStart"] == 0.1 and call["body"]["controlEnd"] == 0.8
    assert call["body"]["modality"] == "depth:0.4"  # the override wins over modality


@pytest.mark.parametrize(
    "overrides, field, words",
    [
        ({"scheduler": "EulerDiscreteScheduler"}, "scheduler", "Flux"),
        ({"modality": "seg"}, "modality", "Flux"),
        ({"num_samples": 0}, "num_samples", "1 to 128"),
        ({"num_inference_steps": 151}, "num_inference_steps", "150"),
        ({"guidance": 11}, "guidance", "10"),
        ({"width": 100}, "width", "steps of 8"),
        ({"control_start": 0.9, "control_end": 0.2}, "control_start", "control_end"),
        ({"modalities": "depth:0"}, "modalities", "(0, 1]"),
        ({"modality_strength": 0}, "modality_strength", "(0, 1]"),
        ({"model_id": "../etc"}, "model_id", "model id"),
        ({"batch": 0}, "batch", "1 to"),
        ({"batch": True}, "batch", "integer"),
        ({"img2img": "yes"}, "img2img", "true or false"),
        ({"modality": "not-a-modality"}, "modality", "one of"),
    ],
)
async def test_invalid_widget_values_answer_400_naming_the_field(
    web_api: Any, routes: Any, emulator: Any, overrides: dict[str, Any], field: str, words: str
) -> None:
    status, body = await expect_error(routes, web_api.quote(widget_values(**overrides)))
    assert status == 400 and body["code"] == "validation"
    assert body["field"] == field, body
    assert field in body["error"] and words in body["error"]
    assert paid_or_quote_calls(emulator) == []  # rejected before the dry run


async def test_quote_body_must_be_an_object(web_api: Any, routes: Any, emulator: Any) -> None:
    status, body = await expect_error(routes, web_api.quote(["not", "a", "dict"]))
    assert status == 400 and body["field"] == "body"
    assert emulator.log() == []


async def test_empty_prompt_is_priced_with_a_placeholder(web_api: Any, emulator: Any) -> None:
    answer = await web_api.quote(widget_values(prompt=""))
    (call,) = paid_or_quote_calls(emulator)
    assert call["body"]["prompt"] == web_api.PLACEHOLDER_PROMPT
    assert answer["per_job"] > 0


async def test_unknown_model_in_quote_answers_404(web_api: Any, routes: Any, emulator: Any) -> None:
    status, body = await expect_error(routes, web_api.quote(widget_values(model_id="no-such-model")))
    assert status == 404 and "no-such-model" in body["error"]
    assert paid_or_quote_calls(emulator) == []


async def test_scenario_outage_answers_502_not_500(web_api: Any, routes: Any, emulator: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(web_api, "ROUTE_RETRY", web_api.RetryPolicy.fast(max_attempts=2))
    emulator.fault(target="POST /v1/generate/*", kind="status", status=502, count=5)
    status, body = await expect_error(routes, web_api.quote(widget_values()))
    assert status == 502 and body["code"] == "upstream" and "502" in body["error"]
    assert len(paid_or_quote_calls(emulator)) == 2  # bounded retries of a free dry run


async def test_logs_and_answers_hold_no_secret(web_api: Any, routes: Any, emulator: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [await web_api.model_info("flux.1-dev"), await web_api.quote(widget_values()), web_api.status()]
    with pytest.raises(Exception) as info:
        await web_api.quote(widget_values(scheduler="DDIMScheduler"))
    answers.append(routes.error_payload(info.value)[1])
    text = json.dumps(answers) + caplog.text
    assert TEST_SECRET not in text and "test-key" not in text
    assert "Authorization" not in text and "Basic " not in text


# --------------------------------------------------------------------------- GET /scenario/status


def test_status_reports_the_emulator_without_key_material(web_api: Any, emulator: Any) -> None:
    answer = web_api.status()
    assert answer == {"configured": True, "base_url": emulator.url, "emulator": True}


def test_status_without_credentials(web_api: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("SCENARIO_API_KEY")
    answer = web_api.status()
    assert answer["configured"] is False and "SCENARIO_API_KEY" in answer["error"]


def test_status_for_the_real_api_hides_query_strings(web_api: Any) -> None:
    answer = web_api.status({"SCENARIO_API_URL": "https://api.cloud.scenario.com/v1/", "SCENARIO_API_KEY": "k"})
    assert answer["base_url"] == "https://api.cloud.scenario.com/v1" and answer["emulator"] is False
    assert answer["configured"] is False  # a key without its secret is not configured
    # the client's config refuses a base URL with a query or fragment; nothing of them is echoed
    env = {"SCENARIO_API_URL": "https://api.cloud.scenario.com/v1?token=abc#frag", "SCENARIO_API_KEY": "k"}
    answer = web_api.status(env)
    assert answer["configured"] is False and answer["emulator"] is False
    assert "abc" not in json.dumps(answer) and "frag" not in json.dumps(answer)


def test_status_never_echoes_a_malformed_url(web_api: Any) -> None:
    answer = web_api.status({"SCENARIO_API_URL": "ftp://user:hunter2@example.com/v1"})
    assert answer["configured"] is False and answer["base_url"] == ""
    assert "hunter2" not in json.dumps(answer)


@pytest.mark.parametrize(
    "url, loopback",
    [
        ("http://127.0.0.1:8790/v1", True),
        ("http://localhost:8790/v1", True),
        ("http://[::1]:8790/v1", True),
        ("https://api.cloud.scenario.com/v1", False),
        ("http://10.0.0.5/v1", False),
    ],
)
def test_loopback_detection(web_api: Any, url: str, loopback: bool) -> None:
    assert web_api.is_loopback(url) is loopback


# --------------------------------------------------------------------------- wiring


class FakeRouteTable(list):
    """Collects ``routes.route(method, path)(handler)`` like aiohttp's RouteTableDef."""

    def route(self, method: str, path: str, **kwargs: Any) -> Any:
        def add(handler: Any) -> Any:
            self.append(type("RouteDef", (), {"method": method, "path": path, "handler": handler})())
            return handler

        return add


def test_try_register_without_comfyui_returns_false(routes: Any) -> None:
    assert routes.try_register() is False


def test_try_register_never_imports_a_server_module(routes: Any, tmp_path: Path, monkeypatch: Any) -> None:
    import sys

    (tmp_path / "server.py").write_text("class PromptServer:\n    instance = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "server", raising=False)
    assert routes.try_register() is False
    bridge = submodule("nodes.bridge")
    assert bridge.prompt_server() is None
    bridge.Progress("1").text("hello")  # status text outside ComfyUI: no import either
    assert "server" not in sys.modules


def test_try_register_on_a_prompt_server(routes: Any, comfy: Any) -> None:
    table = FakeRouteTable()
    comfy.modules["server"].PromptServer.instance.routes = table
    assert submodule("nodes.bridge").prompt_server() is comfy.modules["server"].PromptServer.instance
    assert routes.try_register() is True
    assert {(r.method, r.path) for r in table} == set(routes.ROUTES)
    assert routes.try_register() is True
    assert len(table) == len(routes.ROUTES)  # idempotent: a second registration adds nothing


def test_try_register_never_raises(routes: Any, comfy: Any) -> None:
    class Broken:
        def __iter__(self) -> Any:
            raise RuntimeError("boom")

    comfy.modules["server"].PromptServer.instance.routes = Broken()
    assert routes.try_register() is False


async def test_aiohttp_handlers_answer_json(routes: Any, emulator: Any) -> None:
    web = pytest.importorskip("aiohttp.web")
    test_utils = pytest.importorskip("aiohttp.test_utils")
    table = web.RouteTableDef()
    routes.register_routes(table)
    app = web.Application()
    app.add_routes(table)
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        resp = await client.get("/scenario/models/flux.1-dev")
        assert resp.status == 200 and (await resp.json())["family"] == "flux"
        resp = await client.get("/scenario/models/bad..id")
        assert resp.status == 400 and (await resp.json())["field"] == "model_id"
        resp = await client.post("/scenario/quote", json=widget_values())
        assert resp.status == 200 and (await resp.json())["per_job"] > 0
        resp = await client.post("/scenario/quote", json=widget_values(num_samples=0))
        assert resp.status == 400 and (await resp.json())["field"] == "num_samples"
        resp = await client.post("/scenario/quote", data=b"{not json", headers={"Content-Type": "application/json"})
        assert resp.status == 400 and (await resp.json())["field"] == "body"
        resp = await client.get("/scenario/status")
        assert resp.status == 200 and (await resp.json())["emulator"] is True


# --------------------------------------------------------------------------- web/*.js


def js_files() -> list[Path]:
    return sorted(WEB.glob("*.js"))


def test_web_extension_files_exist() -> None:
    names = {p.name for p in js_files()}
    assert {"scenario.js", "scenario_core.js"} <= names


def test_js_names_only_our_node_types() -> None:
    text = "\n".join(p.read_text() for p in js_files())
    named = set(re.findall(r"['\"`](Scenario[A-Z][A-Za-z0-9]*)['\"`]", text))
    assert named == NAMED_NODE_TYPES
    # no generic hooks that would reach every node type of every pack
    assert "LGraphNode.prototype" not in text and "beforeRegisterNodeDef" not in text


def test_js_routes_match_the_server() -> None:
    text = "\n".join(p.read_text() for p in js_files())
    for path in ("/scenario/models/", "/scenario/quote", "/scenario/status", "/scenario/credentials"):
        assert path in text
    routes = submodule("nodes.routes")
    assert {p for _, p in routes.ROUTES} >= {
        "/scenario/models/{model_id}",
        "/scenario/quote",
        "/scenario/status",
        "/scenario/models",  # issue 8: the model picker's list (its UI is issue 10)
        "/scenario/credentials",
        "/scenario/credentials/clear",
        "/scenario/credentials/test",
    }
    for _, path in routes.ROUTES:  # every server route is used by the extension
        assert path.split("{")[0].rstrip("/") in text, path


def test_settings_locale_matches_the_extension() -> None:
    locale = json.loads((ROOT / "locales" / "en" / "settings.json").read_text())
    core = (WEB / "scenario_core.js").read_text()
    ids = set(re.findall(r"SETTING_\w+ = '(Scenario\.[\w.]+)'", core))
    assert ids == {"Scenario.Quote.Enabled", "Scenario.ModelAware.Enabled"}
    assert set(locale) == {i.replace(".", "_") for i in ids}
    js = (WEB / "scenario.js").read_text()
    for entry in locale.values():
        assert entry["name"] in js  # the English text is the extension's own default
