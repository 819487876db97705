"""Registering the pack loads only what ComfyUI needs at start-up; what the nodes run loads later, off the loop.

ComfyUI reads the node classes, their ``INPUT_TYPES`` and the web directory when it starts, and the pack
registers its routes; the HTTP client stack (httpx, transport, submission, the job watcher, uploads...)
is only needed once a node or a route runs. Inside ComfyUI (its server is up) a daemon thread loads that
stack right after registration (``nodes/stack.py``), so the first prompt does not import it on its loop.
Each check runs in a fresh interpreter: this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from pack_loader import ROOT, submodule

pytest_plugins = ["pack_loader"]  # fixtures: pack

# Loaded only by running a node or a route (never by registration).
CLIENT_STACK = (
    "scenario_api.client",
    "scenario_api.transport",
    "scenario_api.submission",
    "scenario_api.reconcile",
    "scenario_api.intents",
    "scenario_api.uploads",
    "scenario_api.watch",
    "scenario_api.downloads",
    "scenario_api.limits",
    "scenario_api.models",
    "scenario_api.pacing",
    "scenario_api.retry",
    "scenario_api.model_lookup",
    "nodes.sessions",
    "nodes.jobs",
    "nodes.plan",
    "nodes.tensors",
    "nodes.results",
    "nodes.status",
    "nodes.request_builder",
    "nodes.credentials",
    "nodes.web_api",
    "nodes.web_jobs",
    "nodes.web_credentials",
)

LOADER = textwrap.dedent(
    """
    import importlib.util, json, sys, threading, types
    root, with_server = sys.argv[1], sys.argv[2] == "server"
    if with_server:  # ComfyUI creates its PromptServer (with an aiohttp route table) before loading packs
        from aiohttp import web

        class PromptServer:
            instance = types.SimpleNamespace(routes=web.RouteTableDef())

        server = types.ModuleType("server")
        server.PromptServer = PromptServer
        sys.modules["server"] = server
    name = "lazy_start_probe"
    spec = importlib.util.spec_from_file_location(name, root + "/__init__.py", submodule_search_locations=[root])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    registered = sorted(m[len(name) + 1 :] for m in sys.modules if m.startswith(name + "."))
    classes = {k: sorted(v.INPUT_TYPES()) for k, v in mod.NODE_CLASS_MAPPINGS.items()}
    httpx_at_registration = "httpx" in sys.modules
    threads = sorted(t.name for t in threading.enumerate())
    warmed = None
    routes = None
    if with_server:
        sys.modules[name + ".nodes.stack"].start_warm_up().join(120)  # the thread registration started
        warmed = sorted(m[len(name) + 1 :] for m in sys.modules if m.startswith(name + "."))
        routes = len(list(server.PromptServer.instance.routes))
    print(json.dumps({
        "registered": registered,
        "classes": classes,
        "httpx": httpx_at_registration,
        "threads": threads,
        "warmed": warmed,
        "routes": routes,
        "web": mod.WEB_DIRECTORY,
    }))
    """
)


def _load(mode: str) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, str(ROOT), mode],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_registration_loads_no_client_module():
    info = _load("plain")
    loaded = set(info["registered"])
    assert not loaded & set(CLIENT_STACK), sorted(loaded & set(CLIENT_STACK))
    assert info["httpx"] is False  # the client's HTTP library is not even imported
    # what registration does need is there: the node declarations, built from the spec's rules
    assert {"nodes.inputs", "nodes.validation", "nodes.routes", "scenario_api.spec"} <= loaded
    assert info["classes"]["ScenarioControlNetGenerate"] == ["hidden", "optional", "required"]
    assert info["web"] == "./web"
    assert "scenario-start-up" not in info["threads"]  # outside ComfyUI nothing loads in the background
    assert info["warmed"] is None


def test_inside_comfyui_the_stack_is_loaded_in_the_background_after_registration():
    info = _load("server")
    assert set(info["classes"]) == {
        "ScenarioControlNetGenerate",
        "ScenarioImg2ImgControlNet",
        "ScenarioPollJob",
        "ScenarioFetchAsset",
        "ScenarioUploadAsset",
    }
    assert info["routes"] and info["routes"] >= 11  # the routes were registered at import
    warmed = set(info["warmed"])
    assert set(CLIENT_STACK) <= warmed, sorted(set(CLIENT_STACK) - warmed)


def test_the_lazy_names_resolve_to_the_modules_that_define_them(pack):
    stack = submodule("nodes.stack")
    sessions = submodule("nodes.sessions")
    web_api = submodule("nodes.web_api")
    assert stack.shared_client is sessions.shared_client
    assert stack.quote is web_api.quote and stack.ROUTE_TIMEOUT == web_api.ROUTE_TIMEOUT
    assert stack.plan is submodule("nodes.plan")
    assert stack.JobStatus is submodule("scenario_api.models").JobStatus
    assert set(dir(stack)) >= {"shared_client", "plan", "tensors", "warm", "start_warm_up"}
    try:
        stack.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
