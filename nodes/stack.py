"""What the nodes run, loaded on first use: ComfyUI registers the pack without it.

Registering the nodes needs only their declarations: the node classes, their
``INPUT_TYPES`` (built from :mod:`scenario_api.spec`'s rules), their
validators and the route table. What a node or a route *runs* (the HTTP
client and its transport, submission, the job watcher, uploads, the ledger's
store, decoding into tensors...) is reached through this module, as
``stack.shared_client`` or ``stack.plan``: each module loads when one of its
names is first used (module ``__getattr__``), then the name is a plain
attribute.

Loading that stack during the first prompt would stall the prompt's event
loop (tens of milliseconds of imports), so :func:`start_warm_up` loads it all
in a daemon thread as soon as ComfyUI has registered the pack
(``nodes/__init__.py``), together with the start-up check of the job ledger.
"""

from __future__ import annotations

import importlib
import logging
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers; at run time each module loads on first use
    from ..scenario_api import JobStatus as JobStatus
    from ..scenario_api import Limits as Limits
    from ..scenario_api import fixed_interval as fixed_interval
    from ..scenario_api import outcome_error as outcome_error
    from ..scenario_api import watch_job as watch_job
    from ..scenario_api.intents import ORIGIN as ORIGIN
    from ..scenario_api.ledger import node_origin as node_origin
    from . import plan as plan
    from . import tensors as tensors
    from . import web_credentials as web_credentials
    from . import web_jobs as web_jobs
    from .budget import enforce_budget as enforce_budget
    from .credentials import resolve_settings as resolve_settings
    from .jobs import FANOUT_LIMIT as FANOUT_LIMIT
    from .jobs import download_files as download_files
    from .jobs import poll_interval as poll_interval
    from .jobs import run_requests as run_requests
    from .request_builder import BUDGET_WIDGET as BUDGET_WIDGET
    from .request_builder import build_request as build_request
    from .results import RunReport as RunReport
    from .results import file_sizes as file_sizes
    from .results import save_previews as save_previews
    from .results import ui_payload as ui_payload
    from .sessions import shared_client as shared_client
    from .status import StatusBoard as StatusBoard
    from .web_api import ROUTE_TIMEOUT as ROUTE_TIMEOUT
    from .web_api import model_info as model_info
    from .web_api import model_list as model_list
    from .web_api import quote as quote
    from .web_api import status as status

log = logging.getLogger("scenario_controlnet")

_MODULES = ("plan", "tensors", "web_credentials", "web_jobs")  # modules of this package, used as modules

_WHERE = {  # name -> the module (relative to this package) that defines it
    "JobStatus": "..scenario_api",
    "Limits": "..scenario_api",
    "fixed_interval": "..scenario_api",
    "outcome_error": "..scenario_api",
    "watch_job": "..scenario_api",
    "ORIGIN": "..scenario_api.intents",
    "node_origin": "..scenario_api.ledger",
    "enforce_budget": ".budget",
    "resolve_settings": ".credentials",
    "FANOUT_LIMIT": ".jobs",
    "download_files": ".jobs",
    "poll_interval": ".jobs",
    "run_requests": ".jobs",
    "BUDGET_WIDGET": ".request_builder",
    "build_request": ".request_builder",
    "RunReport": ".results",
    "file_sizes": ".results",
    "save_previews": ".results",
    "ui_payload": ".results",
    "shared_client": ".sessions",
    "StatusBoard": ".status",
    "ROUTE_TIMEOUT": ".web_api",
    "model_info": ".web_api",
    "model_list": ".web_api",
    "quote": ".web_api",
    "status": ".web_api",
}


def __getattr__(name: str) -> Any:
    """Load the module behind ``name`` on first use and keep the value (later lookups are plain)."""
    value: Any
    if name in _MODULES:
        value = importlib.import_module(f".{name}", __package__)
    elif name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __package__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULES) | set(_WHERE))


def warm() -> None:
    """Load the whole stack now: every name above, and the protocol layer's public names."""
    for name in (*_MODULES, *_WHERE):
        __getattr__(name)
    protocol: ModuleType = importlib.import_module("..scenario_api", __package__)
    for name in protocol.__all__:
        getattr(protocol, name)


_warm_up: threading.Thread | None = None
_warm_up_lock = threading.Lock()


def check_ledger() -> None:
    """Log the start-up line about unfinished jobs in the job ledger, if any (never raises)."""
    try:
        from .job_ledger import startup_report

        pending = startup_report()
        if pending:
            log.warning(pending)
    except Exception:  # noqa: BLE001 - never let a start-up check break the nodes
        log.warning("Scenario: the job ledger could not be checked at start-up", exc_info=True)


def _start_up_work() -> None:
    check_ledger()
    try:
        warm()
    except Exception:  # noqa: BLE001 - the first run loads (and reports) whatever failed here
        log.warning("Scenario: loading the nodes' client stack in the background failed", exc_info=True)


def start_warm_up() -> threading.Thread:
    """Start (once per process) the daemon thread that checks the job ledger and loads the stack; returns it."""
    global _warm_up
    with _warm_up_lock:
        if _warm_up is None:
            _warm_up = threading.Thread(target=_start_up_work, name="scenario-start-up", daemon=True)
            _warm_up.start()
        return _warm_up


def start_up(*, background: bool) -> None:
    """The pack's start-up work, once its nodes are registered.

    ``background`` (in ComfyUI, whose server is up): the ledger check and
    :func:`warm` run in a daemon thread (:func:`start_warm_up`), so by the
    first prompt the stack is loaded. Otherwise (scripts, tests) only the
    ledger check runs, here, and the stack loads on first use.
    """
    if background:
        start_warm_up()
    else:
        check_ledger()
