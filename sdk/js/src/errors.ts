/** Typed errors built from the gateway's JSON error bodies
 * (`{"error": kind, "message": ..., "request_id": ...}`). */

import { parseRateLimit, parseRetryAfter, type RateLimit } from "./ratelimit.js";

/** Base of every error this package throws. */
export class ClientError extends Error {
  override name = "ClientError";
}

/** The gateway (or a backend behind it) answered a non-2xx status. */
export class GatewayError extends ClientError {
  override name = "GatewayError";
  /** HTTP status. */
  readonly status: number;
  /** Machine-readable kind (`not_found`, `rate_limited`, `step_failed`, ...). */
  readonly error: string;
  /** The answer's `X-Request-ID` (or the body's `request_id`). */
  readonly requestId: string | undefined;
  /** `Retry-After`, in seconds, when given. */
  readonly retryAfter: number | undefined;
  /** The rate-limit headers of the answer, if any. */
  readonly rateLimit: RateLimit | undefined;
  /** The parsed JSON body (or `undefined`). */
  readonly body: unknown;
  /** The answer's headers. */
  readonly headers: Headers;

  constructor(
    status: number,
    error: string,
    message: string,
    init: { requestId?: string; retryAfter?: number; rateLimit?: RateLimit; body?: unknown; headers?: Headers } = {},
  ) {
    super(message);
    this.status = status;
    this.error = error;
    this.requestId = init.requestId;
    this.retryAfter = init.retryAfter;
    this.rateLimit = init.rateLimit;
    this.body = init.body;
    this.headers = init.headers ?? new Headers();
  }

  override toString(): string {
    return `${this.name}: ${this.status} ${this.error}: ${this.message} (request id ${this.requestId})`;
  }
}

/** 400: the request is malformed. */
export class BadRequestError extends GatewayError { override name = "BadRequestError"; }
/** 401: missing or invalid credentials. */
export class AuthenticationError extends GatewayError { override name = "AuthenticationError"; }
/** 403: the credentials do not allow this. */
export class PermissionDeniedError extends GatewayError { override name = "PermissionDeniedError"; }
/** 404: no route, or no such job (or another consumer's job). */
export class NotFoundError extends GatewayError { override name = "NotFoundError"; }
/** 405: the path exists, not with this method. */
export class MethodNotAllowedError extends GatewayError { override name = "MethodNotAllowedError"; }
/** 413: the body is over the route's limit. */
export class PayloadTooLargeError extends GatewayError { override name = "PayloadTooLargeError"; }
/** 422: well-formed JSON whose values are refused (e.g. a blank prompt). */
export class ValidationError extends GatewayError { override name = "ValidationError"; }
/** 429: rate limited; `retryAfter` says when to come back. */
export class RateLimitError extends GatewayError { override name = "RateLimitError"; }
/** 502: a backend failed (for a pipeline, `body.step` names the step). */
export class UpstreamError extends GatewayError { override name = "UpstreamError"; }
/** 503: no backend can take it now (breaker open, queue full, overloaded). */
export class ServiceUnavailableError extends GatewayError { override name = "ServiceUnavailableError"; }
/** 504: the backend or the route's timeout ran out. */
export class GatewayTimeoutError extends GatewayError { override name = "GatewayTimeoutError"; }
/** Any other 5xx. */
export class ServerError extends GatewayError { override name = "ServerError"; }

/** The request got no answer (connect failure, reset, timeout). */
export class TransportError extends ClientError {
  override name = "TransportError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** `waitForJob` ran out of time; `job` is the last state seen. */
export class JobTimeoutError extends ClientError {
  override name = "JobTimeoutError";
  constructor(readonly jobId: string, readonly timeoutMs: number, readonly job: { status: string }) {
    super(`job ${jobId} not final after ${timeoutMs} ms (last status ${job.status})`);
  }
}

/** `waitForJob` saw the job end `failed`; `job.error` says why. */
export class JobFailedError extends ClientError {
  override name = "JobFailedError";
  readonly requestId: string | undefined;
  constructor(readonly job: { job_id: string; error?: string | null; requestId?: string }) {
    super(`job ${job.job_id} failed: ${job.error}`);
    this.requestId = job.requestId;
  }
}

const BY_STATUS: Record<number, typeof GatewayError> = {
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
};

/** The typed error for a non-2xx answer. */
export function errorFromResponse(status: number, headers: Headers, body: unknown, text: string): GatewayError {
  let kind = `http_${status}`;
  let message = text.trim().slice(0, 500) || `HTTP ${status}`;
  let requestId = headers.get("x-request-id") ?? undefined;
  if (body !== null && typeof body === "object") {
    const b = body as Record<string, unknown>;
    if (typeof b.error === "string") kind = b.error;
    if (typeof b.message === "string") message = b.message;
    if (typeof b.request_id === "string" && !requestId) requestId = b.request_id;
  }
  const Cls = BY_STATUS[status] ?? (status >= 500 ? ServerError : GatewayError);
  const init: ConstructorParameters<typeof GatewayError>[3] = { body, headers };
  if (requestId !== undefined) init.requestId = requestId;
  const retryAfter = parseRetryAfter(headers.get("retry-after"));
  if (retryAfter !== undefined) init.retryAfter = retryAfter;
  const rateLimit = parseRateLimit(headers);
  if (rateLimit !== undefined) init.rateLimit = rateLimit;
  return new Cls(status, kind, message, init);
}
