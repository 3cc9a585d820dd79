"""What the sync and async clients share: request building, answer parsing, the
retry decision."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import httpx

if TYPE_CHECKING:
    from .types import JobEvent, ProcessEvent

from ._ratelimit import parse_rate_limit, parse_retry_after
from .errors import TransportError, error_from_response

__version__ = "0.1.0"

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying a request again.

    * **429** is retried for every method: the gateway refused the request before it
      reached a backend, so nothing ran.
    * **503** is retried for idempotent methods (GET...) always, and for POST only when
      the answer has ``Retry-After``: the gateway sends it when it refused the request
      itself (breaker open, job queue full, backend overloaded) so nothing ran. A 503
      without ``Retry-After`` on a POST may come after side effects: not retried.
    * A connection that could not be **opened** is retried for every method (nothing
      was sent); a reset or timeout after sending only for idempotent methods.
    * The wait is ``Retry-After`` when the answer has one (plus up to 10 % jitter, so
      many clients do not come back at the same instant), else exponential backoff with
      full jitter: ``uniform(0, min(max_backoff, backoff * 2**attempt))``.
    * A ``Retry-After`` longer than ``max_retry_after`` is not waited: the error is
      raised at once with its ``retry_after``.
    """

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: Optional[float]) -> Optional[float]:
        """Seconds to wait before try ``attempt + 1``, or ``None`` not to retry."""
        if attempt >= self.max_retries:
            return None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after + random.uniform(0, retry_after * 0.1)
        return random.uniform(0, min(self.max_backoff, self.backoff * (2**attempt)))

    def on_status(self, method: str, status: int, retry_after: Optional[float], attempt: int) -> Optional[float]:
        if status == 429 or (status == 503 and (method in IDEMPOTENT or retry_after is not None)):
            return self.delay(attempt, retry_after)
        return None

    def on_transport_error(self, method: str, exc: Exception, attempt: int) -> Optional[float]:
        if isinstance(exc, httpx.ConnectError) or method in IDEMPOTENT:
            return self.delay(attempt, None)
        return None


def auth_headers(api_key: Optional[str], token: Optional[str]) -> dict[str, str]:
    if api_key and token:
        raise ValueError("give api_key or token, not both")
    h = {"user-agent": f"api-gateway-client-python/{__version__}", "accept": "application/json"}
    if api_key:
        h["x-api-key"] = api_key
    if token:
        h["authorization"] = f"Bearer {token}"
    return h


def build_request(
    client: httpx.Client | httpx.AsyncClient,
    method: str,
    path: str,
    body: Any,
    request_id: Optional[str],
) -> httpx.Request:
    headers = {"x-request-id": request_id} if request_id else {}
    return client.build_request(method, path, json=body, headers=headers)


def meta_of(resp: httpx.Response) -> dict[str, Any]:
    return {
        "request_id": resp.headers.get("x-request-id"),
        "status_code": resp.status_code,
        "rate_limit": parse_rate_limit(resp.headers),
    }


def retry_after_of(resp: httpx.Response) -> Optional[float]:
    return parse_retry_after(resp.headers.get("retry-after"))


def parse(resp: httpx.Response) -> Any:
    """The answer's JSON; raises the typed error for a non-2xx answer."""
    try:
        body: Any = resp.json() if resp.content else None
    except ValueError:
        body = None
    if resp.is_success:
        return body
    raise error_from_response(resp.status_code, resp.headers, body, resp.text)


def _given(**fields: Any) -> dict[str, Any]:
    """A request body of the fields given (``None`` leaves a field out)."""
    return {k: v for k, v in fields.items() if v is not None}


def generation_body(
    prompt: str,
    max_tokens: Optional[int],
    seed: Optional[int],
    priority: Optional[str],
    extra: Optional[Mapping[str, Any]] = None,
) -> dict[str, Any]:
    body = _given(prompt=prompt, max_tokens=max_tokens, seed=seed, priority=priority)
    body.update(extra or {})
    return body


def enrich_body(
    text: str,
    id: Optional[str],
    title: Optional[str],
    metadata: Optional[Mapping[str, Any]],
) -> dict[str, Any]:
    return _given(text=text, id=id, title=title, metadata=None if metadata is None else dict(metadata))


def job_path(job: Any) -> str:
    """``/api/v1/jobs/<id>`` for a job id, or the ``status_url`` of a submission."""
    status_url = getattr(job, "status_url", None)
    if status_url:
        return str(status_url)
    job_id = getattr(job, "job_id", job)
    from urllib.parse import quote

    return f"/api/v1/jobs/{quote(str(job_id), safe='')}"


class SseParser:
    """Server-Sent Events, line by line: ``feed`` returns the JSON ``data`` of an event
    once its blank line comes (comments and other fields skipped, a multi-line ``data``
    joined with newlines); ``end`` returns an event left without its blank line.
    ``event`` is the name (``event:`` field) of the event last returned, or ``None``."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event: Optional[str] = None
        self.event: Optional[str] = None

    def feed(self, line: str) -> Optional[Any]:
        if line == "":
            return self.end()
        if line.startswith("data:"):
            self._data.append(line[5:].lstrip(" "))
        elif line.startswith("event:"):
            self._event = line[6:].strip()
        return None

    def end(self) -> Optional[Any]:
        if not self._data:
            self._event = None
            return None
        data, self._data = "\n".join(self._data), []
        self.event, self._event = self._event, None
        return json.loads(data)


class Stream:
    """One streamed call (``Client._stream`` / ``AsyncClient._stream`` open and read it):
    the request, and how its answer reads. ``answer`` turns a whole answer that is not
    an event stream (its error raised by ``parse``) into the events to give; ``event``
    turns one Server-Sent Event (its name, its JSON data, the stream's meta) into an
    event; ``last`` says whether an event ends the stream; ``tail`` gives an event the
    stream left without its blank line at the end."""

    def __init__(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        answer: Callable[[httpx.Response], list[Any]],
        event: Callable[[Optional[str], Any, Mapping[str, Any]], Any],
        last: Callable[[Any], bool] = lambda _: False,
        tail: bool = False,
    ) -> None:
        self.method, self.path, self.body = method, path, body
        self.answer, self._event, self.last, self._tail = answer, event, last, tail
        self._parser = SseParser()
        self._meta: dict[str, Any] = {}

    def request(self, http: Any, request_id: Optional[str]) -> httpx.Request:
        req = build_request(http, self.method, self.path, self.body, request_id)
        req.headers["accept"] = "text/event-stream"
        return req

    def transport_error(self, e: Exception) -> TransportError:
        return TransportError(f"{self.method} {self.path}: {e}")

    def opened(self, resp: httpx.Response) -> bool:
        """Whether ``resp`` is a 2xx event stream (else read it whole, then ``answer``)."""
        if resp.is_success and is_event_stream(resp):
            self._meta = meta_of(resp)
            return True
        return False

    def feed(self, line: str) -> Optional[Any]:
        """The event that ``line`` completes, if any."""
        d = self._parser.feed(line)
        return None if d is None else self._event(self._parser.event, d, self._meta)

    def end(self) -> Optional[Any]:
        """At the end of the stream: the event left without its blank line (``tail``)."""
        d = self._parser.end() if self._tail else None
        return None if d is None else self._event(self._parser.event, d, self._meta)


def job_events_path(job: Any) -> str:
    """``/api/v1/jobs/<id>/events`` for a job id or a submission."""
    return job_path(job) + "/events"


def job_event(name: Optional[str], data: Any) -> "JobEvent":
    """One event of a job's events stream; an ``error`` event raises its typed error."""
    from .types import JobEvent

    if name == "error":
        status = 404 if isinstance(data, dict) and data.get("error") == "not_found" else 503
        raise error_from_response(status, {}, data, json.dumps(data))
    return JobEvent.from_json(name, data if isinstance(data, dict) else {})


# the status of the answer an ``event: error`` of the pipeline's stream stands for
STREAM_ERROR_STATUS = {"step_rejected": 422, "step_failed": 502, "step_unavailable": 503, "gateway_timeout": 504}


def process_event(name: Optional[str], data: Any, meta: Mapping[str, Any]) -> "ProcessEvent":
    """One event of the pipeline's stream (``meta``: the stream's, given to the result);
    an ``error`` event raises its typed error (an error the first step sent itself
    counts as a 502)."""
    from .types import ProcessEvent

    d = data if isinstance(data, dict) else {}
    if name == "error":
        raise error_from_response(STREAM_ERROR_STATUS.get(str(d.get("error")), 502), {}, data, json.dumps(data))
    return ProcessEvent.of(name, d, **meta)


def is_event_stream(resp: httpx.Response) -> bool:
    return resp.headers.get("content-type", "").startswith("text/event-stream")

