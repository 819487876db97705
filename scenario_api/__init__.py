"""Scenario.com ControlNet API: async client, request rules, image codec, CLI and a local emulator.

This package is the protocol layer of the ComfyUI node pack. It never imports
torch or ComfyUI, so it can be used (and tested) on its own::

    from scenario_api import ScenarioClient, Settings, ControlNetRequest

    async with ScenarioClient(Settings.from_env()) as client:
        job, images = await client.generate(ControlNetRequest(prompt="...", control_image=data_url))

The names below are the public surface; the ComfyUI adapter (``nodes/``) uses
only these. Each loads on first use (module ``__getattr__``): importing the
package loads only its errors, so the ComfyUI pack registers its nodes without
the HTTP client stack (httpx, transport, submission...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConfigurationError,
    DownloadError,
    DownloadRefusedError,
    ExpiredURLError,
    ForbiddenError,
    ImageDecodeError,
    InsufficientCreditsError,
    JobCanceledError,
    JobError,
    JobFailedError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ScenarioError,
    ScenarioTimeoutError,
    ServerError,
    TransientDownloadError,
    TransportError,
    TruncatedDownloadError,
    ValidationError,
)
from .lazy import export_names, load_export
from .version import __version__

if TYPE_CHECKING:  # the names, for type checkers; at run time each module loads on first use
    from . import imaging, spec
    from .cancellation import Finished, finish_shielded
    from .client import INLINE_IMAGE_LIMIT, ScenarioClient
    from .config import (
        DEFAULT_BASE_URL,
        ENV_KEY,
        ENV_PROJECT,
        ENV_SDK_KEY,
        ENV_SDK_SECRET,
        ENV_SECRET,
        ENV_URL,
        Credentials,
        Settings,
        check_key_pair,
        env_key_pair,
        normalise_base_url,
    )
    from .downloads import is_loopback, safe_url
    from .limits import AccountLimiter, limiter_for
    from .models import (
        STATUS_LABELS,
        TERMINAL_STATUSES,
        Asset,
        ControlNetRequest,
        Job,
        JobStatus,
        Model,
        Quote,
        Submission,
    )
    from .pacing import EtaSchedule, PollPolicy
    from .retry import RetryPolicy
    from .spec import precheck_request
    from .uploads import UPLOADS, UploadService, upload_array
    from .watch import Limits, fixed_interval, outcome_error, watch_job

_WHERE = {  # public name -> the module of this package that defines it ("" for a submodule itself)
    "imaging": "",
    "spec": "",
    "Finished": "cancellation",
    "finish_shielded": "cancellation",
    "INLINE_IMAGE_LIMIT": "client",
    "ScenarioClient": "client",
    "precheck_request": "spec",
    "DEFAULT_BASE_URL": "config",
    "ENV_KEY": "config",
    "ENV_PROJECT": "config",
    "ENV_SDK_KEY": "config",
    "ENV_SDK_SECRET": "config",
    "ENV_SECRET": "config",
    "ENV_URL": "config",
    "Credentials": "config",
    "Settings": "config",
    "check_key_pair": "config",
    "env_key_pair": "config",
    "normalise_base_url": "config",
    "is_loopback": "downloads",
    "safe_url": "downloads",
    "AccountLimiter": "limits",
    "limiter_for": "limits",
    "STATUS_LABELS": "models",
    "TERMINAL_STATUSES": "models",
    "Asset": "models",
    "ControlNetRequest": "models",
    "Job": "models",
    "JobStatus": "models",
    "Model": "models",
    "Quote": "models",
    "Submission": "models",
    "EtaSchedule": "pacing",
    "PollPolicy": "pacing",
    "RetryPolicy": "retry",
    "UPLOADS": "uploads",
    "UploadService": "uploads",
    "upload_array": "uploads",
    "Limits": "watch",
    "fixed_interval": "watch",
    "outcome_error": "watch",
    "watch_job": "watch",
}


def __getattr__(name: str) -> Any:
    """Load the module that defines ``name`` on first use (importing the pack stays cheap)."""
    return load_export(__name__, _WHERE, name)


def __dir__() -> list[str]:
    return export_names(__name__, _WHERE)


__all__ = [
    "__version__",
    "AccountLimiter",
    "limiter_for",
    "EtaSchedule",
    "PollPolicy",
    "spec",
    "imaging",
    "ScenarioClient",
    "INLINE_IMAGE_LIMIT",
    "precheck_request",
    "RetryPolicy",
    "Settings",
    "Credentials",
    "DEFAULT_BASE_URL",
    "ENV_KEY",
    "ENV_PROJECT",
    "ENV_SECRET",
    "ENV_SDK_KEY",
    "ENV_SDK_SECRET",
    "ENV_URL",
    "check_key_pair",
    "env_key_pair",
    "normalise_base_url",
    "is_loopback",
    "safe_url",
    "ControlNetRequest",
    "Job",
    "JobStatus",
    "STATUS_LABELS",
    "TERMINAL_STATUSES",
    "Asset",
    "Model",
    "Quote",
    "Submission",
    "UPLOADS",
    "UploadService",
    "upload_array",
    "watch_job",
    "Limits",
    "fixed_interval",
    "outcome_error",
    "finish_shielded",
    "Finished",
    "ScenarioError",
    "ConfigurationError",
    "ValidationError",
    "APIError",
    "BadRequestError",
    "AuthenticationError",
    "ForbiddenError",
    "NotFoundError",
    "InsufficientCreditsError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "ScenarioTimeoutError",
    "JobError",
    "JobFailedError",
    "JobCanceledError",
    "OutcomeUnknownError",
    "DownloadError",
    "DownloadRefusedError",
    "ExpiredURLError",
    "TruncatedDownloadError",
    "TransientDownloadError",
    "ImageDecodeError",
    "BudgetExceededError",
]
