"""Typed errors built from the gateway's JSON error bodies
(``{"error": kind, "message": ..., "request_id": ...}``)."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ._ratelimit import RateLimit, parse_rate_limit, parse_retry_after


class ClientError(Exception):
    """Base of every error this package raises."""


class GatewayError(ClientError):
    """The gateway (or a backend behind it) answered a non-2xx status.

    ``error`` is the machine-readable kind (``not_found``, ``rate_limited``,
    ``step_failed``...), ``request_id`` the answer's ``X-Request-ID`` (or the body's
    ``request_id``), ``retry_after`` the ``Retry-After`` in seconds when given.
    ``body`` is the parsed JSON body (or ``None``), ``headers`` the answer's headers.
    """

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
        rate_limit: Optional[RateLimit] = None,
        body: Any = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(f"{status} {error}: {message} (request id {request_id})")
        self.status = status
        self.error = error
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        self.rate_limit = rate_limit
        self.body = body
        self.headers = dict(headers or {})


class BadRequestError(GatewayError):
    """400: the request is malformed."""


class AuthenticationError(GatewayError):
    """401: missing or invalid credentials."""


class PermissionDeniedError(GatewayError):
    """403: the credentials do not allow this."""


class NotFoundError(GatewayError):
    """404: no route, or no such job (or a job of another consumer)."""


class MethodNotAllowedError(GatewayError):
    """405: the path exists, not with this method."""


class PayloadTooLargeError(GatewayError):
    """413: the body is over the route's limit."""


class ValidationError(GatewayError):
    """422: well-formed JSON whose values are refused (e.g. a blank prompt)."""


class RateLimitError(GatewayError):
    """429: rate limited; ``retry_after`` says when to come back."""


class UpstreamError(GatewayError):
    """502: a backend failed (for a pipeline, ``body["step"]`` names the step)."""


class ServiceUnavailableError(GatewayError):
    """503: no backend can take it now (breaker open, queue full, overloaded)."""


class GatewayTimeoutError(GatewayError):
    """504: the backend or the route's timeout ran out."""


class ServerError(GatewayError):
    """Any other 5xx."""


class TransportError(ClientError):
    """The request did not get an answer (connect failure, reset, timeout)."""


class JobTimeoutError(ClientError):
    """``wait_for_job`` ran out of time; ``job`` is the last state seen."""

    def __init__(self, job_id: str, timeout: float, job: Any) -> None:
        super().__init__(f"job {job_id} not final after {timeout:g}s (last status {getattr(job, 'status', None)})")
        self.job_id = job_id
        self.timeout = timeout
        self.job = job


class JobFailedError(ClientError):
    """``wait_for_job`` saw the job end ``failed``; ``job.error`` says why."""

    def __init__(self, job: Any) -> None:
        super().__init__(f"job {job.job_id} failed: {job.error}")
        self.job = job
        self.request_id = job.request_id


_BY_STATUS: dict[int, type[GatewayError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
    502: UpstreamError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}


def error_from_response(status: int, headers: Mapping[str, str], body: Any, text: str) -> GatewayError:
    """The typed error for a non-2xx answer."""
    h = {k.lower(): v for k, v in headers.items()}
    kind = f"http_{status}"
    message = text.strip()[:500] or f"HTTP {status}"
    request_id = h.get("x-request-id")
    if isinstance(body, dict):
        if isinstance(body.get("error"), str):
            kind = body["error"]
        if isinstance(body.get("message"), str):
            message = body["message"]
        if isinstance(body.get("request_id"), str) and not request_id:
            request_id = body["request_id"]
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else GatewayError)
    return cls(
        status,
        kind,
        message,
        request_id=request_id,
        retry_after=parse_retry_after(h.get("retry-after")),
        rate_limit=parse_rate_limit(h),
        body=body,
        headers=h,
    )
