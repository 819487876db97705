"""Scenario.com ControlNet API: async client, request rules, image codec, CLI and a local emulator.

This package is the protocol layer of the ComfyUI node pack. It never imports
torch or ComfyUI, so it can be used (and tested) on its own::

    from scenario_api import ScenarioClient, Settings, ControlNetRequest

    async with ScenarioClient(Settings.from_env()) as client:
        job, images = await client.generate(ControlNetRequest(prompt="...", control_image=data_url))

The names below are the public surface; the ComfyUI adapter (``nodes/``) uses
only these.
"""

from . import imaging, spec
from .cancellation import Finished, finish_shielded
from .client import INLINE_IMAGE_LIMIT, ScenarioClient, precheck_request
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
from .uploads import UPLOADS, UploadService, upload_array
from .version import __version__
from .watch import Limits, fixed_interval, outcome_error, watch_job

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
