"""The pack in a real browser: ComfyUI + the emulator + Debian's Chromium, driven by Playwright.

Skipped unless ``SCENARIO_COMFYUI_DIR`` names a ComfyUI checkout (and Playwright and Chromium are available).
For every frontend x renderer (classic canvas, Nodes 2.0) it checks, as a new user would see it:

1. set credentials in Settings > Scenario (the dialog posts to the pack's route; the secret is found nowhere
   in the browser, ComfyUI's settings or the workflow; the file is owner-only);
2. see a quote (priced at the control map's real size);
3. pick a model with the searchable picker (``model_id`` stays a plain string);
4. run: the final state "done" with cost and job id, the job link, the preview image on the node;
5. change only the budget and run again: the job ledger serves the result, the node says "reused", nothing is paid;
6. run again and press Stop: the node says "canceled" and the remote cancel was sent;
7. let Scenario fail a job: the node says "failed" with Scenario's reason;
8. open the Scenario Jobs panel and add a Fetch Asset node from a job.

Screenshots go to ``SCENARIO_BROWSER_SHOTS`` (default: a temporary folder; never inside the repository).

Environment:

- ``SCENARIO_COMFYUI_DIR``: the ComfyUI checkout (its ``main.py``);
- ``SCENARIO_COMFYUI_PYTHON``: the Python that runs ComfyUI and the emulator (default: this one);
- ``SCENARIO_FRONTENDS``: ``label=static-root`` pairs separated by commas; ``default`` = ComfyUI's own
  frontend (default ``default=default``), e.g. ``1.27=default,1.58=/path/comfyui_frontend_package/static``;
- ``SCENARIO_RENDERERS``: ``classic,vue`` (default both);
- ``SCENARIO_CHROMIUM``: the browser (default ``/usr/bin/chromium``);
- ``SCENARIO_BROWSER_SHOTS``: where screenshots and the checklist go.

Also runs as a script (the rig has Playwright but no pytest)::

    SCENARIO_COMFYUI_DIR=... python tests/browser/test_browser.py
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
KEY = "api_browser_check_0042"
SECRET = "browser-secret-never-shown-987"
GENERATE = "ScenarioControlNetGenerate"
MAP_IMAGE = "scenario_canny_house.png"  # 768 x 512

try:  # pytest is optional: the rig runs this file as a script
    import pytest
except ImportError:  # pragma: no cover - script mode
    pytest = None  # type: ignore[assignment]


# --------------------------------------------------------------------------- configuration


def frontends() -> list[tuple[str, str | None]]:
    raw = os.environ.get("SCENARIO_FRONTENDS", "default=default")
    out = []
    for item in raw.split(","):
        label, _, root = item.partition("=")
        root = root.strip() or "default"
        out.append((label.strip(), None if root == "default" else root))
    return out


def renderers() -> list[str]:
    return [r.strip() for r in os.environ.get("SCENARIO_RENDERERS", "classic,vue").split(",") if r.strip()]


def shots_dir() -> Path:
    raw = os.environ.get("SCENARIO_BROWSER_SHOTS")
    path = Path(raw) if raw else Path(tempfile.mkdtemp(prefix="scenario-browser-shots-"))
    path.mkdir(parents=True, exist_ok=True)
    if ROOT in path.resolve().parents or path.resolve() == ROOT:
        raise SystemExit(f"SCENARIO_BROWSER_SHOTS must be outside the repository, got {path}")
    return path


def skip_reason() -> str | None:
    comfy = os.environ.get("SCENARIO_COMFYUI_DIR")
    if not comfy:
        return "SCENARIO_COMFYUI_DIR is not set (a ComfyUI checkout)"
    if not (Path(comfy) / "main.py").is_file():
        return f"no main.py in SCENARIO_COMFYUI_DIR={comfy}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not Path(os.environ.get("SCENARIO_CHROMIUM", "/usr/bin/chromium")).exists():
        return "no Chromium (set SCENARIO_CHROMIUM)"
    return None


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, body: Any = None, method: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def wait_http(url: str, seconds: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        with contextlib.suppress(Exception):
            urllib.request.urlopen(url, timeout=2).read()
            return
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


@dataclass
class Stack:
    """One emulator + one ComfyUI with the pack, for one frontend."""

    label: str
    base: Path
    url: str
    emulator: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def emulator_log(self) -> list[dict[str, Any]]:
        return http(self.emulator + "/_emulator/log")

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()


@contextlib.contextmanager
def stack(label: str, front_end_root: str | None) -> Iterator[Stack]:
    comfy = Path(os.environ["SCENARIO_COMFYUI_DIR"])
    python = os.environ.get("SCENARIO_COMFYUI_PYTHON", sys.executable)
    base = Path(tempfile.mkdtemp(prefix=f"scenario-browser-{label}-"))
    for sub in ("custom_nodes", "input", "output", "temp", "user", "models"):
        (base / sub).mkdir()
    (base / "custom_nodes" / "scenario-controlnet").symlink_to(ROOT)
    for img in (ROOT / "example_workflows" / "input").iterdir():
        shutil.copy(img, base / "input" / img.name)
    with contextlib.suppress(OSError):
        shutil.copy(comfy / "input" / "example.png", base / "input" / "example.png")
    emu_port, port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIO_")}
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    emu_env = dict(env, SCENARIO_API_KEY=KEY, SCENARIO_API_SECRET=SECRET)  # the one pair the emulator accepts
    logs = base / "logs"
    logs.mkdir()
    s = Stack(label, base, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{emu_port}")
    try:
        s.procs.append(
            subprocess.Popen(
                [python, "-m", "scenario_api.emulator", "--host", "127.0.0.1", "--port", str(emu_port)]
                + ["--queued", "0.3", "--warming-up", "0.3", "--running", "3"],
                cwd=ROOT,
                env=emu_env,
                stdout=open(logs / "emulator.log", "wb"),  # noqa: SIM115 - closed with the process
                stderr=subprocess.STDOUT,
            )
        )
        wait_http(s.emulator + "/_emulator/state", 30, s.procs[-1])
        # ComfyUI gets the API URL but NO key: the user enters it in Settings > Scenario.
        comfy_env = dict(env, SCENARIO_API_URL=s.emulator + "/v1")
        args = [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port)]
        args += ["--base-directory", str(base), "--database-url", f"sqlite:///{base}/user/comfyui.db"]
        if front_end_root:
            args += ["--front-end-root", front_end_root]
        s.procs.append(
            subprocess.Popen(
                args,
                cwd=comfy,
                env=comfy_env,
                stdout=open(logs / "comfyui.log", "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            )
        )
        wait_http(s.url + "/system_stats", 240, s.procs[-1])
        yield s
    finally:
        s.stop()


# --------------------------------------------------------------------------- the browser run


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


STATUS_JS = """(t) => { const n = (app.graph.nodes ?? app.graph._nodes).find(n => n.type === t)
const el = n?.widgets.find(w => w.name === 'scenario_quote')?.element"""


class Run:
    """One frontend x renderer pass; every step appends a Check and saves a screenshot."""

    def __init__(self, s: Stack, renderer: str, page: Any, out: Path) -> None:
        self.s, self.renderer, self.page, self.out = s, renderer, page, out
        self.checks: list[Check] = []
        self.shots: list[str] = []
        self.n = 0

    def shot(self, name: str) -> None:
        self.n += 1
        path = self.out / f"{self.s.label}-{self.renderer}-{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path))
        self.shots.append(str(path))

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)

    def js(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def wait_js(self, script: str, seconds: float, arg: Any = None) -> bool:
        try:
            self.page.wait_for_function(script, arg=arg, timeout=seconds * 1000)
            return True
        except Exception:
            return False

    def text(self, selector: str) -> str:
        loc = self.page.locator(selector)
        return loc.first.inner_text() if loc.count() else ""

    def status(self, selector: str, attr: str = "textContent") -> str:
        """A part of the generate node's status box, read through the node (1.27's Nodes 2.0 does not mount it)."""
        return self.js(STATUS_JS + f"; return el ? (el.querySelector({selector!r})?.{attr} ?? '') : '' }}", GENERATE)

    def wait_status(self, selector: str, pattern: str, seconds: float, attr: str = "textContent") -> bool:
        cond = STATUS_JS + f"; return new RegExp({pattern!r}).test(el?.querySelector({selector!r})?.{attr} ?? '') }}"
        return self.wait_js(cond, seconds, GENERATE)

    def click_status(self, selector: str) -> None:
        self.js(STATUS_JS + f"; el.querySelector({selector!r}).click() }}", GENERATE)

    def visible_state(self) -> str:
        """The text the user sees on the node: the mounted status box, or 1.27 Nodes 2.0's text row.

        For the text row this is the value its input shows on screen (Nodes 2.0 draws its own copy of a widget's
        value), read at full detail with the node's lower part in view.
        """
        self.zoom_to_bottom()
        shown = self.js(
            """(t) => { const n = (app.graph.nodes ?? app.graph._nodes).find(n => n.type === t)
            const box = n.widgets.find(w => w.name === 'scenario_quote')?.element
            if (box?.isConnected) return 'status box: ' + box.innerText.replace(/\\s+/g, ' ')
            if (!n.widgets.find(w => w.name === 'scenario_state')) return 'not shown'
            const dom = document.querySelector(`[data-node-id="${n.id}"]`)
            const input = [...(dom?.querySelectorAll('.lg-widget-container') ?? [])]
              .find(r => r.textContent.includes('scenario_state'))?.querySelector('input, textarea')
            return input?.value ? 'text row: ' + input.value : 'not shown' }""",
            GENERATE,
        )
        self.node_focus()
        return str(shown)

    def node_focus(self) -> None:
        """Fit every node in the view (both renderers draw from the canvas offset and scale)."""
        self.js(
            """() => { const g = app.graph, c = app.canvas, el = c.canvas
            const nodes = g.nodes ?? g._nodes
            if (!nodes.length) return
            let [x0, y0, x1, y1] = [1e9, 1e9, -1e9, -1e9]
            for (const n of nodes) { x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - 40)
              x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1] + 40) }
            const w = el.clientWidth - 420, h = el.clientHeight - 140  // room for the sidebar and the menus
            const scale = Math.min(1, w / (x1 - x0), h / (y1 - y0))
            c.ds.scale = scale
            c.ds.offset = [380 / scale - x0 + (w / scale - (x1 - x0)) / 2, 100 / scale - y0]
            c.setDirty(true, true) }"""
        )
        self.page.wait_for_timeout(600)

    def zoom_to_bottom(self) -> None:
        """Zoom to 0.9 (full detail in both renderers) with the generate node's lower part in view.

        Nodes 2.0 draws a node taller than its canvas size and, at a zoom of 0.8 or less, leaves out a node's
        content (its image previews) on frontend 1.27, so the bottom is found from the node's own element.
        """
        script = """(t) => { const c = app.canvas, el = c.canvas
            const n = (app.graph.nodes ?? app.graph._nodes).find(n => n.type === t)
            const dom = document.querySelector(`[data-node-id="${n.id}"]`)
            const height = dom ? dom.getBoundingClientRect().height / c.ds.scale : n.size[1]
            c.ds.scale = 0.9
            c.ds.offset = [el.clientWidth / 2 / 0.9 - n.pos[0] - n.size[0] / 2,
                           el.clientHeight * 0.85 / 0.9 - n.pos[1] - height]
            c.setDirty(true, true) }"""
        self.js(script, GENERATE)
        self.page.wait_for_timeout(800)
        self.js(script, GENERATE)  # again, now that the node is drawn at full detail (its real height)
        self.page.wait_for_timeout(800)

    def closeup(self, name: str) -> None:
        """A screenshot of the lower part of the generate node (status box, text row, preview)."""
        self.zoom_to_bottom()
        self.shot(name)
        self.node_focus()

    def paid_submits(self) -> int:
        return len(
            [
                e
                for e in self.s.emulator_log()
                if e["method"] == "POST"
                and e["path"].startswith("/v1/generate")
                and not (e.get("query") or {}).get("dryRun")
            ]
        )

    # ------------------------------------------------------------------ steps

    def open(self) -> None:
        base = self.s.url
        http(f"{base}/api/settings/Comfy.TutorialCompleted", True, "POST")
        http(f"{base}/api/settings/Comfy.VueNodes.Enabled", self.renderer == "vue", "POST")
        http(f"{base}/api/settings/Comfy.Minimap.Visible", False, "POST")
        self.page.goto(base + "/", wait_until="domcontentloaded")
        self.page.wait_for_function("() => window.app && window.app.graph && window.app.canvas", timeout=120_000)
        self.page.wait_for_timeout(2000)
        self.page.keyboard.press("Escape")

    def set_credentials(self) -> None:
        page = self.page
        page.evaluate("() => app.extensionManager.command.execute('Comfy.ShowSettingsDialog')")
        page.wait_for_timeout(1200)
        page.locator("[role=dialog]").get_by_text("Scenario", exact=True).first.click()
        page.wait_for_selector(".scenario-credentials-open", timeout=15_000)
        page.wait_for_timeout(800)
        before = self.text(".scenario-credentials-line")
        self.check("settings: no key before", "No Scenario API key" in before, before)
        page.locator(".scenario-credentials-open").click()
        page.wait_for_selector(".scenario-credentials-dialog", timeout=10_000)
        page.locator(".scenario-credentials-api_key").fill(KEY)
        page.locator(".scenario-credentials-api_secret").fill(SECRET)
        self.shot("credentials-typed")
        page.locator(".scenario-credentials-save").click()
        page.wait_for_function(
            "() => /Saved/.test(document.querySelector('.scenario-credentials-message')?.textContent || '')",
            timeout=15_000,
        )
        page.locator(".scenario-credentials-test").click()
        ok = self.wait_js(
            "() => /Connection OK/.test(document.querySelector('.scenario-credentials-message')?.textContent || '')",
            20,
        )
        msg = self.text(".scenario-credentials-message")
        self.check("credentials saved and tested", ok, msg)
        status = self.text(".scenario-credentials-status")
        self.check("status shows only the last 4", "0042" in status and KEY not in status, status)
        self.shot("credentials-saved")
        page.locator(".scenario-credentials-close").click()
        page.keyboard.press("Escape")
        page.wait_for_timeout(500)
        path = self.s.base / "user" / "scenario" / "credentials.json"
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
        self.check("credentials file is 0600", mode == 0o600, oct(mode) if mode is not None else "missing")
        settings = (self.s.base / "user" / "default" / "comfy.settings.json").read_text(errors="replace")
        storage = self.js("() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
        self.check("secret not in settings or browser storage", SECRET not in settings + storage)

    def load_workflow(self) -> None:
        wf = json.loads((ROOT / "example_workflows" / "canny_controlnet_generate.json").read_text())
        self.js("(wf) => app.loadGraphData(wf)", wf)
        self.page.wait_for_timeout(2500)
        # Feed the ready-made edge map straight from LoadImage (no Canny warm-up), so its size is known.
        self.js(
            """([type, image, seedValue]) => { const g = app.graph; const nodes = g.nodes ?? g._nodes
            const load = nodes.find(n => n.type === 'LoadImage'), canny = nodes.find(n => n.type === 'Canny')
            const gen = nodes.find(n => n.type === type)
            if (canny) g.remove(canny)
            load.connect(0, gen, 0)
            const w = load.widgets.find(w => w.name === 'image'); w.value = image; w.callback?.(image)
            // a seed of its own: the job ledger would (truthfully) reuse an earlier pass's paid result
            const seed = gen.widgets.find(w => w.name === 'seed'); seed.value = seedValue; seed.callback?.(seedValue)
            g.setDirtyCanvas(true, true) }""",
            [GENERATE, MAP_IMAGE, int(time.time()) % 1_000_000 * 10 + len(self.renderer)],
        )
        self.page.wait_for_timeout(1500)
        self.node_focus()

    def see_quote(self) -> None:
        ok = self.wait_status(".scenario-quote", "CU per job", 30)
        quote = self.status(".scenario-quote")
        self.check("quote shown", ok, quote)
        self.check("quote priced at the map's size", "768×512" in quote and "map size" in quote, quote)
        seen = self.visible_state()
        self.check("quote visible on the node", "CU per job" in seen, seen)
        self.shot("quote")

    def pick_model(self) -> None:
        page = self.page
        self.click_status(".scenario-pick-model")
        page.wait_for_selector(".scenario-model-picker", timeout=10_000)
        listed = self.wait_js("() => document.querySelectorAll('.scenario-model-row').length > 0", 20)
        page.locator(".scenario-model-search").fill("schnell")
        page.wait_for_timeout(500)
        self.shot("model-picker")
        if listed and page.locator('.scenario-model-row[data-id="flux.1-schnell"]').count():
            page.locator('.scenario-model-row[data-id="flux.1-schnell"]').click()
        else:
            page.locator(".scenario-model-search").fill("flux.1-schnell")
            page.locator(".scenario-model-search").press("Enter")
        value = self.js(
            "(t) => (app.graph.nodes ?? app.graph._nodes).find(n => n.type === t).widgets"
            ".find(w => w.name === 'model_id').value",
            GENERATE,
        )
        self.check("model list offered by the route", listed, self.text(".scenario-model-info"))
        self.check("picked model is a plain string", value == "flux.1-schnell", repr(value))
        saved = self.js("(t) => JSON.stringify(app.graph.serialize())", GENERATE)
        self.check("saved workflow holds the id as a string", '"flux.1-schnell"' in saved and SECRET not in saved)
        page.wait_for_timeout(1500)

    def queue(self) -> None:
        btn = self.page.locator('[data-testid="queue-button"]')
        if btn.count():
            btn.first.click()
        else:
            self.js("() => app.queuePrompt(0, 1)")

    def run_done(self) -> None:
        self.queue()
        ok = self.wait_status(".scenario-result", "^done$", 180, "dataset.state")
        self.page.wait_for_timeout(1500)
        self.node_focus()
        result = self.status(".scenario-result")
        seen = self.visible_state()
        self.check("final state visible on the node: done, cost, job id", "done" in seen and "job_" in seen, seen)
        self.check("final state: done with cost and job id", ok and "CU" in result and "job_" in result, result)
        href = self.status(".scenario-job-link", "href")
        self.check("job link to Scenario's web app", href.startswith("https://app.scenario.com/"), href)
        self.zoom_to_bottom()
        in_node = """(t) => { const n = (app.graph.nodes ?? app.graph._nodes).find(n => n.type === t)
            const dom = document.querySelector(`[data-node-id="${n.id}"]`)
            return dom ? dom.querySelectorAll('img[src*="/view?"]').length : 0 }"""
        self.wait_js(f"(t) => ({in_node})(t) > 0 || !document.querySelector('[data-node-id]')", 8, GENERATE)
        previews = self.js(
            """(t) => { const n = (app.graph.nodes ?? app.graph._nodes).find(n => n.type === t)
            const out = (app.nodeOutputs || {})[String(n.id)]
            return { imgs: (n.imgs || []).length, ui: out?.images?.length || 0 } }""",
            GENERATE,
        )
        previews["dom"] = self.js(in_node, GENERATE)
        self.node_focus()
        self.check("preview image on the node", previews["imgs"] or previews["dom"], json.dumps(previews))
        quote = self.status(".scenario-quote")
        self.check("billed cost next to the quote", "billed" in quote, quote)
        self.shot("done")
        self.closeup("done-closeup")

    def set_widget(self, name: str, value: Any) -> None:
        self.js(
            """([t, name, value]) => { const n = (app.graph.nodes ?? app.graph._nodes).find(n => n.type === t)
            const w = n.widgets.find(w => w.name === name); w.value = value; w.callback?.(w.value) }""",
            [GENERATE, name, value],
        )

    def run_reused(self) -> None:
        """Change only the budget (not sent to Scenario): ComfyUI runs the node again and the ledger serves it."""
        before = self.paid_submits()
        self.set_widget("max_creative_units", 50)
        self.queue()
        ok = self.wait_status(".scenario-result", "^reused$", 120, "dataset.state")
        self.page.wait_for_timeout(1000)
        seen = self.visible_state()
        self.check("same request again: node says reused", ok and "reused" in seen, seen)
        self.check("reused: no new paid job", self.paid_submits() == before, f"{self.paid_submits() - before} new")
        self.closeup("reused-closeup")
        self.set_widget("max_creative_units", 0)

    def run_failed(self) -> None:
        """Scenario fails the job: the node says failed, with Scenario's reason."""
        reason = "Content rejected by the safety filter"
        http(
            self.s.emulator + "/_emulator/faults",
            {"target": "POST /v1/generate/*", "kind": "job_failure", "count": 1, "error": reason},
            "POST",
        )
        self.js(
            """(t) => { const n = (app.graph.nodes ?? app.graph._nodes).find(n => n.type === t)
            const w = n.widgets.find(w => w.name === 'seed'); w.value = w.value + 1; w.callback?.(w.value) }""",
            GENERATE,
        )
        self.queue()
        ok = self.wait_status(".scenario-result", "^failed$", 120, "dataset.state")
        self.page.wait_for_timeout(1000)
        seen = self.visible_state()
        self.check(
            "failed job: node says failed, with Scenario's reason",
            ok and "failed" in seen and reason[:20] in seen,
            seen,
        )
        self.closeup("failed-closeup")
        http(self.s.emulator + "/_emulator/faults", None, "DELETE")
        self.page.keyboard.press("Escape")  # ComfyUI's own error dialog for the failed node
        self.page.wait_for_timeout(500)

    def run_and_stop(self) -> None:
        http(self.s.emulator + "/_emulator/config", {"timing": {"running": 60}}, "POST")
        self.js(
            """(t) => { const n = (app.graph.nodes ?? app.graph._nodes).find(n => n.type === t)
            const w = n.widgets.find(w => w.name === 'seed'); w.value = w.value + 1; w.callback?.(w.value) }""",
            GENERATE,
        )
        before = self.paid_submits()
        self.queue()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.paid_submits() <= before:  # until Scenario accepted the job
            time.sleep(0.3)
        started = self.wait_status(".scenario-result", "^running$", 5, "dataset.state")
        self.page.wait_for_timeout(2500)
        self.shot("running")
        stop = self.page.locator('button[aria-label="Cancel current run"], button[aria-label="Interrupt"]')
        if stop.count() and stop.first.is_enabled():
            stop.first.click()
        else:
            self.js("() => app.extensionManager.command.execute('Comfy.Interrupt')")
        ok = self.wait_status(".scenario-result", "^canceled$", 60, "dataset.state")
        self.page.wait_for_timeout(1500)
        result = self.status(".scenario-result")
        cancels = [e for e in self.s.emulator_log() if e["method"] == "POST" and e["path"].endswith("/action")]
        self.check("Stop: node says canceled", started and ok, result)
        seen = self.visible_state()
        self.check("Stop: 'canceled' visible on the node", "canceled" in seen, seen)
        self.check("Stop: remote cancel sent", bool(cancels), f"{len(cancels)} cancel request(s)")
        self.shot("canceled")
        self.closeup("canceled-closeup")
        http(self.s.emulator + "/_emulator/config", {"timing": {"running": 3}}, "POST")

    def jobs_panel(self) -> None:
        self.js("() => app.extensionManager.command.execute('Workspace.ToggleSidebarTab.scenario-jobs')")
        ok = self.wait_js("() => document.querySelectorAll('.scenario-jobs-row').length >= 2", 20)
        rows = self.js(
            "() => [...document.querySelectorAll('.scenario-jobs-row')].map(r => [r.dataset.jobId, r.dataset.state])"
        )
        self.check("jobs panel lists the jobs", ok, json.dumps(rows))
        thumbs = self.wait_js(
            "() => [...document.querySelectorAll('.scenario-jobs-row img')].some(i => i.naturalWidth > 0)",
            15,
        )
        self.check("jobs panel shows thumbnails", thumbs)
        self.shot("jobs-panel")
        button = self.page.locator('.scenario-jobs-row[data-state="succeeded"]').get_by_text(
            "Fetch Asset node", exact=True
        )
        if button.count():
            button.first.click()
            self.page.wait_for_timeout(800)
        fetch = self.js(
            """() => (app.graph.nodes ?? app.graph._nodes).filter(n => n.type === 'ScenarioFetchAsset')
            .map(n => n.widgets.find(w => w.name === 'asset_ids').value)"""
        )
        self.check(
            "Fetch Asset node added, filled", bool(fetch) and all(v.startswith("asset_") for v in fetch), str(fetch)
        )
        self.shot("fetch-node")
        self.js("() => app.extensionManager.command.execute('Workspace.ToggleSidebarTab.scenario-jobs')")


def run_one(s: Stack, renderer: str, out: Path) -> Run:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=os.environ.get("SCENARIO_CHROMIUM", "/usr/bin/chromium"),
            headless=True,
            args=["--no-sandbox"],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        console: list[str] = []
        page.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda e: console.append(f"[pageerror] {e}"))
        run = Run(s, renderer, page, out)
        steps = [run.open, run.set_credentials, run.load_workflow, run.see_quote, run.pick_model, run.run_done]
        steps += [run.run_reused, run.run_and_stop, run.run_failed, run.jobs_panel]
        try:
            for step in steps:
                try:
                    step()
                except Exception as exc:  # a broken step is a failed check, the next steps still run
                    run.check(f"step {step.__name__}", False, f"{type(exc).__name__}: {exc}"[:300])
                    with contextlib.suppress(Exception):
                        run.shot(f"error-{step.__name__}")
        finally:
            (out / f"{s.label}-{renderer}-console.txt").write_text("\n".join(console))
            browser.close()
        return run


def run_all(out: Path) -> list[Run]:
    runs = []
    for label, root in frontends():
        with stack(label, root) as s:
            for renderer in renderers():
                runs.append(run_one(s, renderer, out))
                # every pass starts from the same state: no saved key
                with contextlib.suppress(FileNotFoundError):
                    (s.base / "user" / "scenario" / "credentials.json").unlink()
    report = [
        {"frontend": r.s.label, "renderer": r.renderer, "checks": [c.__dict__ for c in r.checks], "shots": r.shots}
        for r in runs
    ]
    (out / "checklist.json").write_text(json.dumps(report, indent=1))
    lines = []
    for r in runs:
        lines.append(f"## {r.s.label} / {r.renderer}")
        lines += [f"- [{'x' if c.ok else ' '}] {c.name}: {c.detail}" for c in r.checks]
    (out / "checklist.md").write_text("\n".join(lines) + "\n")
    return runs


if pytest is not None:

    @pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
    @pytest.mark.timeout(3600)
    def test_the_pack_in_a_real_browser() -> None:
        runs = run_all(shots_dir())
        failed = [f"{r.s.label}/{r.renderer}: {c.name} ({c.detail})" for r in runs for c in r.checks if not c.ok]
        assert not failed, "\n".join(failed)


if __name__ == "__main__":
    reason = skip_reason()
    if reason:
        raise SystemExit(f"skipped: {reason}")
    out = shots_dir()
    results = run_all(out)
    print((out / "checklist.md").read_text())
    print(f"screenshots and checklist in {out}")
    sys.exit(0 if all(c.ok for r in results for c in r.checks) else 1)
