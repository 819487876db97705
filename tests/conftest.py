"""Shared pytest fixtures: one emulator per session, reset before each test that asks for it.

Fixtures
--------
- ``emulator``: an :class:`EmulatorHandle` on a freshly reset emulator (fast timing
  ``Timing(0.05, 0.05, 0.2)``, credentials ``test-key`` / ``test-secret-value-123``).
  ``.url`` (``…/v1``), ``.origin``, ``.log()``, ``.requests(method, path_glob)``,
  ``.fault(**fault)``, ``.faults()``, ``.config(**cfg)``, ``.reset()``, ``.clear_log()``,
  ``.api()`` (an authenticated ``httpx.Client`` on ``.url``), ``.emu`` (the in-process object).
- ``settings``: ``Settings(base_url=emulator.url, credentials=Credentials(TEST_KEY, TEST_SECRET))``.
- ``env_for_emulator``: the ``emulator`` handle, with SCENARIO_API_URL/KEY/SECRET pointing at it.

Every test also runs with SCENARIO_API_KEY/SECRET set to the test pair, SCENARIO_API_URL
set to the session emulator (so nothing can reach the real API by accident),
SCENARIO_PROJECT_ID unset and SCENARIO_STATE_DIR (the CLI's job ledger) in the test's tmp_path.
Image helpers live in ``tests/helpers.py`` (``from helpers import make_png``).
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT), str(ROOT / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import httpx  # noqa: E402

from scenario_api.config import Credentials, Settings  # noqa: E402
from scenario_api.emulator import Emulator, Timing  # noqa: E402


class _PackFolderIsNoTestPackage:
    """Collect the repository folder as a plain directory, not as a package.

    The folder is the ComfyUI pack, so it has an ``__init__.py``, and pytest would import it as a package named after
    the folder before any test runs. A clone folder named like the repository ("scenario-controlnet") is no valid
    module name, and that import then fails on the pack's relative imports. The tests load the pack the way ComfyUI
    does (tests/pack_loader.py). A conftest hook is not asked about its own folder's parent, hence a plugin.
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        return pytest.Dir.from_parent(parent, path=path) if path == ROOT else None


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("scenario-pack-folder"):
        config.pluginmanager.register(_PackFolderIsNoTestPackage(), "scenario-pack-folder")


TEST_KEY = "test-key"
TEST_SECRET = "test-secret-value-123"
FAST_TIMING = Timing(queued=0.05, warming_up=0.05, running=0.2)


class EmulatorHandle:
    """Test-side view of a running emulator; every helper goes over real HTTP."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.url = emu.url
        self.origin = emu.origin
        self.key, self.secret = TEST_KEY, TEST_SECRET
        self._http = httpx.Client(base_url=self.origin, trust_env=False, timeout=10.0)

    # ---------------------------------------------------------------- controls

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        resp = self._http.request(method, path, json=payload)
        assert resp.status_code == 200, f"{method} {path} -> {resp.status_code} {resp.text}"
        return resp.json()

    def log(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_emulator/log")

    def state(self) -> dict[str, Any]:
        """``{"balance", "jobs"}``: jobs counts every job created, even one whose reply is still held back."""
        return self._call("GET", "/_emulator/state")

    def clear_log(self) -> None:
        self._call("DELETE", "/_emulator/log")

    def requests(self, method: str = "*", path_glob: str = "*") -> list[dict[str, Any]]:
        """Log entries whose method and path (no query) match the shell patterns."""
        return [
            e
            for e in self.log()
            if fnmatch.fnmatchcase(e["method"], method) and fnmatch.fnmatchcase(e["path"], path_glob)
        ]

    def fault(self, **fault: Any) -> dict[str, Any]:
        return self._call("POST", "/_emulator/faults", fault)

    def faults(self, *faults: dict[str, Any]) -> Any:
        """Add several faults at once, or list the pending ones when called without arguments."""
        if not faults:
            return self._call("GET", "/_emulator/faults")
        return self._call("POST", "/_emulator/faults", list(faults))

    def clear_faults(self) -> None:
        self._call("DELETE", "/_emulator/faults")

    def config(self, **cfg: Any) -> dict[str, Any]:
        return self._call("POST", "/_emulator/config", cfg)

    def reset(self) -> None:
        self._call("POST", "/_emulator/reset")

    # ---------------------------------------------------------------- API access

    def api(self, **kw: Any) -> httpx.Client:
        """An authenticated client on the ``/v1`` base URL (close it, or use ``with``)."""
        kw.setdefault("timeout", 10.0)
        return httpx.Client(base_url=self.url, auth=(self.key, self.secret), trust_env=False, **kw)

    def close(self) -> None:
        self._http.close()


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorHandle]:
    emu = Emulator(credentials=(TEST_KEY, TEST_SECRET), timing=FAST_TIMING)
    emu.start()
    handle = EmulatorHandle(emu)
    try:
        yield handle
    finally:
        handle.close()
        emu.stop()


@pytest.fixture(autouse=True)
def _scenario_test_env(monkeypatch: pytest.MonkeyPatch, emulator_server: EmulatorHandle, tmp_path: Path) -> None:
    # The CLI's job ledger lives in a fresh folder per test, never in the home directory.
    monkeypatch.setenv("SCENARIO_STATE_DIR", str(tmp_path / "scenario-state"))
    monkeypatch.setenv("SCENARIO_API_KEY", TEST_KEY)
    monkeypatch.setenv("SCENARIO_API_SECRET", TEST_SECRET)
    monkeypatch.setenv("SCENARIO_API_URL", emulator_server.url)
    monkeypatch.delenv("SCENARIO_PROJECT_ID", raising=False)
    # custom models' records are cached per process (with a TTL): each test starts without them
    for name, module in list(sys.modules.items()):
        if name.endswith("scenario_api.model_lookup") and hasattr(module, "CUSTOM_RECORDS"):
            module.CUSTOM_RECORDS.clear()


@pytest.fixture(autouse=True)
def _fresh_account_state() -> Iterator[None]:
    """Parallel-job limits and learned job timings are process-wide: each test starts from nothing."""
    from scenario_api import limits, pacing

    def forget() -> None:
        for prefix in ("scenario_api", "scenario_controlnet_pack.scenario_api"):  # the tests' and the pack's copy
            lim, pac = sys.modules.get(f"{prefix}.limits", limits), sys.modules.get(f"{prefix}.pacing", pacing)
            lim.forget_limiters()
            pac.HISTORY.clear()

    forget()
    yield
    forget()


@pytest.fixture
def emulator(emulator_server: EmulatorHandle) -> EmulatorHandle:
    emulator_server.reset()
    return emulator_server


@pytest.fixture
def settings(emulator: EmulatorHandle) -> Settings:
    return Settings(base_url=emulator.url, credentials=Credentials(TEST_KEY, TEST_SECRET))


@pytest.fixture
def env_for_emulator(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    monkeypatch.setenv("SCENARIO_API_URL", emulator.url)
    monkeypatch.setenv("SCENARIO_API_KEY", TEST_KEY)
    monkeypatch.setenv("SCENARIO_API_SECRET", TEST_SECRET)
    return emulator
