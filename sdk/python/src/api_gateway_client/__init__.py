"""Python client for the api-gateway: the pipeline, generation, enrichment, async
jobs and their webhooks. ``Client`` is synchronous, ``AsyncClient`` asynchronous."""

from ._core import RetryPolicy, __version__
from ._ratelimit import RateLimit
from .client import AsyncClient, Client
from .errors import (
    AuthenticationError,
    BadRequestError,
    ClientError,
    GatewayError,
    GatewayTimeoutError,
    JobFailedError,
    JobTimeoutError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    TransportError,
    UpstreamError,
    ValidationError,
)
from .types import (
    Enrichment, Generation, Job, JobCallback, JobEvent, JobSubmission, Keyword, PipelineResult, ProcessEvent, Step,
    TokenEvent,
)
from .webhooks import SIGNATURE_HEADER, sign_webhook, verify_webhook_signature

__all__ = [
    "AsyncClient", "Client", "RetryPolicy", "RateLimit", "__version__",
    "ClientError", "GatewayError", "BadRequestError", "AuthenticationError", "PermissionDeniedError",
    "NotFoundError", "MethodNotAllowedError", "PayloadTooLargeError", "ValidationError", "RateLimitError",
    "UpstreamError", "ServiceUnavailableError", "GatewayTimeoutError", "ServerError", "TransportError",
    "JobFailedError", "JobTimeoutError",
    "Enrichment", "Generation", "Job", "JobCallback", "JobSubmission", "Keyword", "PipelineResult", "Step",
    "TokenEvent", "ProcessEvent", "JobEvent",
    "SIGNATURE_HEADER", "sign_webhook", "verify_webhook_signature",
]
