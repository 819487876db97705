"""Scenario.com ControlNet API: async client, request rules, image codec, CLI and a local emulator.

This package is the protocol layer of the ComfyUI node pack. It never imports
torch or ComfyUI, so it can be used (and tested) on its own::

    from scenario_api import ScenarioClient, Settings, ControlNetRequest

    async with ScenarioClient(Settings.from_env()) as client:
        job, images = await client.generate(ControlNetRequest(prompt="...", control_image=data_url))
"""

__version__ = "0.1.0"

from . import spec  # noqa: E402  (the version must exist before submodules read it)
from .client import INLINE_IMAGE_LIMIT, ScenarioClient  # noqa: E402
from .config import Credentials, Settings  # noqa: E402
from .errors import (  # noqa: E402
    APIError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConfigurationError,
    DownloadError,
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
    TransportError,
    ValidationError,
)
from .models import Asset, ControlNetRequest, Job, Model, Quote, Submission  # noqa: E402
from .retry import RetryPolicy  # noqa: E402

__all__ = [
    "__version__",
    "spec",
    "ScenarioClient",
    "INLINE_IMAGE_LIMIT",
    "RetryPolicy",
    "Settings",
    "Credentials",
    "ControlNetRequest",
    "Job",
    "Asset",
    "Model",
    "Quote",
    "Submission",
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
    "ImageDecodeError",
    "BudgetExceededError",
]
