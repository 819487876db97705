"""The only module that touches ComfyUI's own Python modules.

Everything ComfyUI-specific (the Stop flag, the interrupt exception, the node
progress bar, the status text under a node, the user directory) is reached
here, lazily and inside functions, for three reasons:

* the pack must import without ComfyUI (tests, linters, the registry's
  checks), so every lookup has a quiet fallback;
* ComfyUI installs a top-level module called ``nodes``; importing ComfyUI
  modules at pack import time would couple our import order to theirs;
* tests swap in fake ``comfy.model_management`` / ``comfy.utils`` / ``server``
  modules through ``sys.modules`` after the pack is loaded, and a lazy lookup
  picks them up.

Verified against ComfyUI 0.3.64 (``comfy/model_management.py``,
``comfy/utils.py::ProgressBar``, ``server.py::PromptServer.send_progress_text``,
``folder_paths.get_user_directory``).
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from types import ModuleType

log = logging.getLogger("scenario_controlnet")


class InterruptProcessingException(Exception):
    """Stand-in for ComfyUI's class of the same name when ComfyUI is absent.

    ComfyUI turns *its* class into a clean "execution interrupted" event; the
    fallback only matters outside ComfyUI (tests, scripts), where the name is
    what callers recognise.
    """


def _module(name: str) -> ModuleType | None:
    """Import ``name`` if it can be imported, else ``None`` (never raises).

    A module already in ``sys.modules`` wins, so fakes installed by tests are
    used even when a real one exists elsewhere on the path.
    """
    mod = sys.modules.get(name)
    if mod is not None:
        return mod
    try:
        return importlib.import_module(name)
    except Exception:  # ImportError, or a broken optional dependency inside it
        return None


def prompt_server() -> object | None:
    """``server.PromptServer.instance`` when running inside ComfyUI, else ``None``.

    Only an *already imported* ``server`` module is used, never imported here:
    outside ComfyUI any unrelated module called ``server`` on ``sys.path``
    would otherwise be imported (and run) by the pack. Inside ComfyUI,
    ``main.py`` imports ``server`` and creates the ``PromptServer`` before
    it loads custom nodes (ComfyUI 0.3.64 ``main.py``: ``import server``,
    then ``server.PromptServer(loop)``, then ``nodes.init_extra_nodes``), so
    the module is always there when the pack needs it.
    """
    srv = sys.modules.get("server")
    ps = getattr(srv, "PromptServer", None) if srv is not None else None
    return getattr(ps, "instance", None) if ps is not None else None


def processing_interrupted() -> bool:
    """True while the user's Stop request is pending.

    Uses ``processing_interrupted()``, which only *reads* the flag. The
    ``throw_exception_if_processing_interrupted()`` variant clears it, so with
    several concurrent Scenario nodes only the first would see the Stop.
    """
    mm = _module("comfy.model_management")
    fn = getattr(mm, "processing_interrupted", None) if mm else None
    if fn is None:
        return False
    try:
        return bool(fn())
    except Exception:
        return False


def _restore_interrupt_flag() -> None:
    """Set the Stop flag again after ComfyUI's progress hook cleared it."""
    mm = _module("comfy.model_management")
    fn = getattr(mm, "interrupt_current_processing", None) if mm else None
    if fn is not None:
        try:
            fn(True)
        except Exception as exc:
            log.debug("could not restore the Stop flag: %s", type(exc).__name__)


def interrupt_exception_class() -> type[BaseException]:
    """ComfyUI's ``InterruptProcessingException``, or the local fallback."""
    mm = _module("comfy.model_management")
    cls = getattr(mm, "InterruptProcessingException", None) if mm else None
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return cls
    return InterruptProcessingException


def interrupt_exception() -> BaseException:
    """An instance to raise for a clean interrupt (not shown as an error)."""
    return interrupt_exception_class()()


def is_interrupt(exc: BaseException) -> bool:
    """Recognise an interrupt by class name, whichever module defined it."""
    return type(exc).__name__ == "InterruptProcessingException"


def prompt_id() -> str | None:
    """The id of the prompt being executed, or ``None`` outside ComfyUI (for the job ledger's records).

    Newer ComfyUI has ``comfy_execution.utils.get_executing_context()``; older
    ones keep ``PromptServer.instance.last_prompt_id``. Never raises.
    """
    utils = sys.modules.get("comfy_execution.utils")
    getter = getattr(utils, "get_executing_context", None) if utils else None
    if getter is not None:
        try:
            context = getter()
            value = getattr(context, "prompt_id", None) if context is not None else None
            if value:
                return str(value)[:80]
        except Exception:
            pass
    instance = prompt_server()
    value = getattr(instance, "last_prompt_id", None) if instance is not None else None
    return str(value)[:80] if value else None


def _folder_paths_dir(getter: str) -> Path | None:
    """``folder_paths.<getter>()`` as a Path, or ``None`` outside ComfyUI (or when it fails)."""
    fp = _module("folder_paths")
    fn = getattr(fp, getter, None) if fp else None
    if fn is None:
        return None
    try:
        value = fn()
    except Exception:
        return None
    return Path(value) if value else None


def user_directory() -> Path | None:
    """ComfyUI's user directory (``--user-directory``), or ``None`` outside ComfyUI."""
    return _folder_paths_dir("get_user_directory")


PREVIEW_SUBFOLDER = "scenario"


def temp_directory() -> Path | None:
    """ComfyUI's temp directory (wiped at each start; where preview images go), or ``None`` outside ComfyUI."""
    return _folder_paths_dir("get_temp_directory")


def save_previews(files: list[tuple[str, bytes]]) -> list[dict[str, str]]:
    """Write preview files to ComfyUI's temp dir; return ComfyUI's ``ui.images`` entries for them.

    ``files`` are ``(file name, bytes)``; names are made by the caller and must
    be plain (no folders). Outside ComfyUI, or if writing fails, returns ``[]``
    (a preview must never fail a paid generation).
    """
    base = temp_directory()
    if base is None or not files:
        return []
    folder = base / PREVIEW_SUBFOLDER
    out: list[dict[str, str]] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files:
            if "/" in name or "\\" in name or name.startswith("."):
                raise ValueError("preview file names must be plain")
            (folder / name).write_bytes(data)
            out.append({"filename": name, "subfolder": PREVIEW_SUBFOLDER, "type": "temp"})
    except Exception as exc:
        log.warning("Scenario: preview images could not be written (%s)", type(exc).__name__)
        return []
    return out


def send_event(event: str, data: dict[str, object]) -> bool:
    """Send a websocket event to the browser that queued the prompt (``PromptServer.send_sync``).

    Returns False outside ComfyUI or when sending failed; never raises.
    """
    instance = prompt_server()
    send = getattr(instance, "send_sync", None) if instance is not None else None
    if send is None:
        return False
    try:
        send(event, data, getattr(instance, "client_id", None))
        return True
    except Exception as exc:
        log.debug("event %s not sent: %s", event, type(exc).__name__)
        return False


class Progress:
    """A node's progress bar and status text; both silently do nothing without ComfyUI.

    ``update(fraction)`` drives ``comfy.utils.ProgressBar`` (scaled to
    ``total``); ``text(message)`` calls ``PromptServer.instance.
    send_progress_text(message, unique_id)``. Neither ever raises: progress
    display must never fail a paid generation.

    ComfyUI's global progress hook calls
    ``throw_exception_if_processing_interrupted()``, which *clears* the Stop
    flag while raising. So the bar is not touched while Stop is pending, and
    if the flag is set in between, the exception is swallowed and the flag put
    back, so the job runner still sees the Stop and cancels the Scenario job.
    """

    def __init__(self, unique_id: str | None, total: int = 100) -> None:
        self.unique_id = None if unique_id is None else str(unique_id)
        self.total = total
        self._bar: object | None = None
        self._bar_ready = False
        self.last_text: str | None = None
        self.last_value: float | None = None

    def _get_bar(self) -> object | None:
        if self._bar_ready:
            return self._bar
        self._bar_ready = True
        utils = _module("comfy.utils")
        cls = getattr(utils, "ProgressBar", None) if utils else None
        if cls is None:
            return None
        try:
            self._bar = cls(self.total, node_id=self.unique_id)
        except TypeError:  # older ComfyUI: ProgressBar(total) only
            try:
                self._bar = cls(self.total)
            except Exception:
                self._bar = None
        except Exception:
            self._bar = None
        return self._bar

    def update(self, fraction: float) -> None:
        """Show ``fraction`` (0..1) of the node's work as done."""
        if processing_interrupted():
            return
        fraction = min(1.0, max(0.0, float(fraction)))
        bar = self._get_bar()
        if bar is None:
            return
        value = round(fraction * self.total, 2)
        try:
            bar.update_absolute(value)  # type: ignore[attr-defined]
            self.last_value = value
        except BaseException as exc:  # ComfyUI's progress hook raises its interrupt exception here
            if is_interrupt(exc):
                _restore_interrupt_flag()
                return
            if isinstance(exc, Exception):
                log.debug("progress bar update failed: %s", type(exc).__name__)
                return
            raise

    def text(self, message: str) -> None:
        """Write ``message`` under the node (needs the hidden ``UNIQUE_ID``)."""
        self.last_text = message
        if self.unique_id is None:
            return
        instance = prompt_server()
        send = getattr(instance, "send_progress_text", None) if instance is not None else None
        if send is None:
            return
        try:
            send(message, self.unique_id)
        except Exception as exc:
            log.debug("progress text failed: %s", type(exc).__name__)
