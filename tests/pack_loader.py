"""Load the repository as a ComfyUI custom-node package, the way ComfyUI's loader does.

ComfyUI imports a pack folder with ``importlib.util.spec_from_file_location``
on its ``__init__.py`` under a path-derived module name, so everything inside
must use relative imports. Loading it the same way here proves that, and
keeps the pack's module tree (``<name>.nodes``, ``<name>.scenario_api``)
separate from the top-level ``scenario_api`` the other tests import: catch
errors with the pack's own classes (``pack.scenario_api.errors``).

Also here: :class:`FakeComfy` (stand-ins for the ComfyUI modules the bridge
reaches lazily), :func:`image_tensor` (IMAGE batches for tests) and the pytest
fixtures ``pack``, ``comfy`` and ``node_env``; test modules load them with
``pytest_plugins = ["pack_loader"]`` (or import them by name).

PYTEST_DONT_REWRITE: this module holds no assertions, and tests import it
before pytest registers it as a plugin.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACK_NAME = "scenario_controlnet_pack"


def load_pack(name: str = PACK_NAME) -> ModuleType:
    """Import (once) and return the pack package."""
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def submodule(path: str, name: str = PACK_NAME) -> ModuleType:
    """A submodule of the loaded pack, e.g. ``submodule("nodes.tensors")``."""
    load_pack(name)
    return importlib.import_module(f"{name}.{path}")


# --------------------------------------------------------------------------- fake ComfyUI modules


class FakeComfy:
    """Minimal stand-ins for the ComfyUI modules ``nodes/bridge.py`` reaches lazily.

    Mirrors ComfyUI 0.3.64: the Stop flag with a reading and a clearing
    accessor, ``InterruptProcessingException``, a ``ProgressBar`` whose global
    hook raises (and clears the flag) when Stop is pending, and
    ``PromptServer.instance.send_progress_text``. Calls are recorded.
    """

    def __init__(self, user_dir: Path | None = None) -> None:
        self.interrupted = False
        self.bar_updates: list[tuple[str | None, float, float]] = []
        self.texts: list[tuple[str, str]] = []
        self.events: list[tuple[str, object, object]] = []  # PromptServer.send_sync(event, data, sid)
        self.user_dir = user_dir
        self.temp_dir: Path | None = None  # folder_paths.get_temp_directory(); previews are written there
        fake = self

        class InterruptProcessingException(Exception):
            pass

        self.InterruptProcessingException = InterruptProcessingException

        mm = ModuleType("comfy.model_management")
        mm.InterruptProcessingException = InterruptProcessingException  # type: ignore[attr-defined]
        mm.processing_interrupted = lambda: fake.interrupted  # type: ignore[attr-defined]

        def interrupt_current_processing(value: bool = True) -> None:
            fake.interrupted = value

        def throw_exception_if_processing_interrupted() -> None:
            if fake.interrupted:
                fake.interrupted = False
                raise InterruptProcessingException()

        mm.interrupt_current_processing = interrupt_current_processing  # type: ignore[attr-defined]
        mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted  # type: ignore[attr-defined]

        class ProgressBar:
            def __init__(self, total: float, node_id: str | None = None) -> None:
                self.total, self.node_id, self.current = total, node_id, 0.0

            def update_absolute(self, value: float, total: float | None = None, preview: object = None) -> None:
                throw_exception_if_processing_interrupted()  # what ComfyUI's global hook does
                self.current = min(value, self.total)
                fake.bar_updates.append((self.node_id, self.current, self.total))

        utils = ModuleType("comfy.utils")
        utils.ProgressBar = ProgressBar  # type: ignore[attr-defined]

        class _Instance:
            client_id = "fake-client"

            def send_progress_text(self, text: str, node_id: str, sid: object = None) -> None:
                fake.texts.append((str(node_id), text))

            def send_sync(self, event: str, data: object, sid: object = None) -> None:
                fake.events.append((event, data, sid))

        class PromptServer:
            instance = _Instance()

        server = ModuleType("server")
        server.PromptServer = PromptServer  # type: ignore[attr-defined]

        folder_paths = ModuleType("folder_paths")
        folder_paths.get_user_directory = lambda: str(fake.user_dir) if fake.user_dir else None  # type: ignore[attr-defined]
        folder_paths.get_temp_directory = lambda: str(fake.temp_dir) if fake.temp_dir else None  # type: ignore[attr-defined]

        comfy = ModuleType("comfy")
        comfy.model_management = mm  # type: ignore[attr-defined]
        comfy.utils = utils  # type: ignore[attr-defined]
        self.modules = {
            "comfy": comfy,
            "comfy.model_management": mm,
            "comfy.utils": utils,
            "server": server,
            "folder_paths": folder_paths,
        }

    def install(self, monkeypatch: object) -> FakeComfy:
        for name, module in self.modules.items():
            monkeypatch.setitem(sys.modules, name, module)  # type: ignore[attr-defined]
        return self


# --------------------------------------------------------------------------- pytest fixtures


@pytest.fixture
def pack() -> ModuleType:
    return load_pack()


@pytest.fixture
def comfy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeComfy]:
    """Fake ComfyUI modules in ``sys.modules``; the user directory is an empty temp dir."""
    user_dir = tmp_path / "comfy-user"
    user_dir.mkdir()
    yield FakeComfy(user_dir).install(monkeypatch)
    if PACK_NAME in sys.modules:  # the nodes' job ledger lives in this user dir: close it with the test
        submodule("nodes.job_ledger").close_all()


@pytest.fixture
def node_env(env_for_emulator, comfy: FakeComfy, monkeypatch: pytest.MonkeyPatch, pack: ModuleType):  # type: ignore[no-untyped-def]
    """The emulator in the env, fast polling, fake ComfyUI, and empty per-process caches."""
    monkeypatch.setenv("SCENARIO_POLL_INTERVAL", "0.05")
    submodule("scenario_api.uploads").UPLOADS.clear()
    submodule("nodes.poll_node").forget_all()
    yield env_for_emulator
    submodule("scenario_api.uploads").UPLOADS.clear()
    submodule("nodes.poll_node").forget_all()


def image_tensor(*arrays):  # type: ignore[no-untyped-def]
    """A ComfyUI IMAGE batch [B,H,W,3] float32 from HxW or HxWx3 uint8 arrays (same size)."""
    import numpy as np
    import torch

    items = []
    for a in arrays:
        a = np.asarray(a)
        if a.ndim == 2:
            a = np.stack([a, a, a], axis=-1)
        items.append(torch.from_numpy(a.astype(np.float32) / 255.0))
    return torch.stack(items)
