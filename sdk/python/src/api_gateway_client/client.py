"""``Client`` (sync) and ``AsyncClient`` (async): the same methods, on httpx."""

from __future__ import annotations

import time
from typing import Any, AsyncIterator, Iterator, Mapping, Optional, Union

import anyio
import httpx

from . import _core
from ._core import RetryPolicy
from .errors import JobFailedError, JobTimeoutError, TransportError
from .types import Enrichment, Generation, Job, JobEvent, JobSubmission, PipelineResult, ProcessEvent, TokenEvent

JobRef = Union[str, JobSubmission]

PROCESS = "/api/v1/process"
GENERATE = "/api/v2/generate"
ENRICH = "/api/v2/enrich"
SUBMIT = "/api/v1/async-process"


def _process_stream(prompt: str, max_tokens: Optional[int], seed: Optional[int],
                    priority: Optional[str]) -> _core.Stream:
    """``POST /api/v1/process`` streamed: a non-stream answer is the whole result; the
    ``result`` event ends the stream."""
    return _core.Stream(
        "POST", PROCESS, _core.generation_body(prompt, max_tokens, seed, priority, {"stream": True}),
        answer=lambda resp: [ProcessEvent(result=PipelineResult.from_json(_core.parse(resp) or {}, **_core.meta_of(resp)))],
        event=_core.process_event,
        last=lambda event: event.result is not None,
    )


def _generate_stream(prompt: str, max_tokens: Optional[int], seed: Optional[int],
                     priority: Optional[str]) -> _core.Stream:
    """``POST /api/v2/generate`` streamed: a non-stream answer is one ``done`` event."""
    return _core.Stream(
        "POST", GENERATE, _core.generation_body(prompt, max_tokens, seed, priority, {"stream": True}),
        answer=lambda resp: [TokenEvent.from_json({**(_core.parse(resp) or {}), "done": True})],
        event=lambda _name, data, _meta: TokenEvent.from_json(data),
        tail=True,
    )


def _job_events(job: JobRef) -> _core.Stream:
    """``GET /api/v1/jobs/{id}/events``: a non-stream 2xx answer gives no event; the
    final state ends the stream."""
    def no_events(resp: httpx.Response) -> list[Any]:
        _core.parse(resp)
        return []

    return _core.Stream(
        "GET", _core.job_events_path(job), None,
        answer=no_events,
        event=lambda name, data, _meta: _core.job_event(name, data),
        last=lambda event: event.is_final,
    )


class _Base:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: Optional[str] = None,
        token: Optional[str] = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        retry: Optional[RetryPolicy] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self._headers = {**_core.auth_headers(api_key, token), **(headers or {})}
        self._timeout = timeout


class Client(_Base):
    """Synchronous client.

    >>> with Client("http://127.0.0.1:8080") as gw:
    ...     print(gw.generate("The fox and the", max_tokens=10, seed=7).text)
    """

    def __init__(self, base_url: str, *, http_client: Optional[httpx.Client] = None, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self._http = http_client or httpx.Client(base_url=self.base_url, headers=self._headers, timeout=self._timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, body: Any = None, *, request_id: Optional[str] = None) -> tuple[Any, dict[str, Any]]:
        """Sends with retries; returns (JSON body, meta) or raises a ``GatewayError``."""
        method = method.upper()
        attempt = 0
        while True:
            req = _core.build_request(self._http, method, path, body, request_id)
            try:
                resp = self._http.send(req)
            except httpx.TransportError as e:
                wait = self.retry.on_transport_error(method, e, attempt)
                if wait is None:
                    raise TransportError(f"{method} {path}: {e}") from e
            else:
                wait = self.retry.on_status(method, resp.status_code, _core.retry_after_of(resp), attempt)
                if wait is None:
                    return _core.parse(resp), _core.meta_of(resp)
            attempt += 1
            time.sleep(wait)

    def process(self, prompt: str, *, max_tokens: Optional[int] = None, seed: Optional[int] = None,
                priority: Optional[str] = None, request_id: Optional[str] = None) -> PipelineResult:
        """``POST /api/v1/process``: generation, then enrichment of the generated text."""
        d, m = self.request("POST", PROCESS, _core.generation_body(prompt, max_tokens, seed, priority), request_id=request_id)
        return PipelineResult.from_json(d or {}, **m)

    def process_stream(self, prompt: str, *, max_tokens: Optional[int] = None, seed: Optional[int] = None,
                       priority: Optional[str] = None, request_id: Optional[str] = None) -> Iterator[ProcessEvent]:
        """``POST /api/v1/process`` with ``"stream": true``: the generation's pieces as they
        are made, its usage (``done``), then one last event whose ``result`` is the
        pipeline's whole answer (what ``process`` returns). Stopping the iteration (or
        closing it) closes the connection, which stops the generation. An error before
        the stream raises the typed ``GatewayError``; an ``event: error`` in it (e.g. the
        enrichment step failed) raises its typed error; nothing is retried."""
        return self._stream(_process_stream(prompt, max_tokens, seed, priority), request_id)

    def generate(self, prompt: str, *, max_tokens: Optional[int] = None, seed: Optional[int] = None,
                 priority: Optional[str] = None, request_id: Optional[str] = None) -> Generation:
        """``POST /api/v2/generate``."""
        d, m = self.request("POST", GENERATE, _core.generation_body(prompt, max_tokens, seed, priority), request_id=request_id)
        return Generation.from_json(d or {}, **m)

    def generate_stream(self, prompt: str, *, max_tokens: Optional[int] = None, seed: Optional[int] = None,
                        priority: Optional[str] = None, request_id: Optional[str] = None) -> Iterator[TokenEvent]:
        """``POST /api/v2/generate`` with ``"stream": true``: the pieces of the text as they
        are made, then one event with ``done`` and the usage. Stopping the iteration (or
        closing it) closes the connection, which stops the generation. An error before
        the stream starts raises the typed ``GatewayError``; nothing is retried."""
        return self._stream(_generate_stream(prompt, max_tokens, seed, priority), request_id)

    def enrich(self, text: str, *, id: Optional[str] = None, title: Optional[str] = None,
               metadata: Optional[Mapping[str, Any]] = None, request_id: Optional[str] = None) -> Enrichment:
        """``POST /api/v2/enrich``."""
        d, m = self.request("POST", ENRICH, _core.enrich_body(text, id, title, metadata), request_id=request_id)
        return Enrichment.from_json(d or {}, **m)

    def submit_job(self, prompt: str, *, max_tokens: Optional[int] = None, seed: Optional[int] = None,
                   priority: Optional[str] = None, callback_url: Optional[str] = None,
                   request_id: Optional[str] = None) -> JobSubmission:
        """``POST /api/v1/async-process`` → 202 with the job id."""
        extra = {"callback_url": callback_url} if callback_url else None
        d, m = self.request("POST", SUBMIT, _core.generation_body(prompt, max_tokens, seed, priority, extra), request_id=request_id)
        return JobSubmission.from_json(d or {}, **m)

    def get_job(self, job: JobRef, *, request_id: Optional[str] = None) -> Job:
        """``GET /api/v1/jobs/{job_id}``; ``NotFoundError`` for an unknown id."""
        d, m = self.request("GET", _core.job_path(job), request_id=request_id)
        return Job.from_json(d or {}, **m)

    def watch_job(self, job: JobRef, *, request_id: Optional[str] = None) -> Iterator[JobEvent]:
        """``GET /api/v1/jobs/{job_id}/events``: each state the job enters, as it happens
        (those it already passed first), ending with the final one, whose ``job`` has the
        result or error. Stopping the iteration (or closing it) closes the connection. An
        unknown id raises ``NotFoundError`` before the first event; an ``event: error``
        mid-stream raises its typed error."""
        return self._stream(_job_events(job), request_id)

    def _stream(self, stream: _core.Stream, request_id: Optional[str]) -> Iterator[Any]:
        """Sends ``stream``'s request and gives its events (see ``_core.Stream``); the
        connection closes when the stream ends or the iteration stops."""
        try:
            resp = self._http.send(stream.request(self._http, request_id), stream=True)
        except httpx.TransportError as e:
            raise stream.transport_error(e) from e
        try:
            if not stream.opened(resp):
                resp.read()
                yield from stream.answer(resp)
                return
            for line in resp.iter_lines():
                event = stream.feed(line)
                if event is not None:
                    yield event
                    if stream.last(event):
                        return
            event = stream.end()
            if event is not None:
                yield event
        finally:
            resp.close()

    def wait_for_job(self, job: JobRef, *, timeout: float = 60.0, interval: float = 0.25,
                     raise_on_failure: bool = True) -> Job:
        """Polls until the job is ``done`` (returned) or ``failed`` (``JobFailedError``,
        or returned when ``raise_on_failure=False``); ``JobTimeoutError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.get_job(job)
            if current.is_final:
                if current.status == "failed" and raise_on_failure:
                    raise JobFailedError(current)
                return current
            left = deadline - time.monotonic()
            if left <= 0:
                raise JobTimeoutError(current.job_id, timeout, current)
            time.sleep(min(interval, left))


class AsyncClient(_Base):
    """Asynchronous client (asyncio or trio, through anyio).

    >>> async with AsyncClient("http://127.0.0.1:8080") as gw:
    ...     job = await gw.wait_for_job(await gw.submit_job("Once upon a time"))
    """

    def __init__(self, base_url: str, *, http_client: Optional[httpx.AsyncClient] = None, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self._http = http_client or httpx.AsyncClient(base_url=self.base_url, headers=self._headers, timeout=self._timeout)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, body: Any = None, *, request_id: Optional[str] = None) -> tuple[Any, dict[str, Any]]:
        """Sends with retries; returns (JSON body, meta) or raises a ``GatewayError``."""
        method = method.upper()
        attempt = 0
        while True:
            req = _core.build_request(self._http, method, path, body, request_id)
            try:
                resp = await self._http.send(req)
            except httpx.TransportError as e:
                wait = self.retry.on_transport_error(method, e, attempt)
                if wait is None:
                    raise TransportError(f"{method} {path}: {e}") from e
            else:
                wait = self.retry.on_status(method, resp.status_code, _core.retry_after_of(resp), attempt)
                if wait is None:
                    return _core.parse(resp), _core.meta_of(resp)
            attempt += 1
            await anyio.sleep(wait)

    async def process(self, prompt: str, *, max_tokens: Optional[int] = None, seed: Optional[int] = None,
                      priority: Optional[str] = None, request_id: Optional[str] = None) -> PipelineResult:
        d, m = await self.request("POST", PROCESS, _core.generation_body(prompt, max_tokens, seed, priority), request_id=request_id)
        return PipelineResult.from_json(d or {}, **m)

    def process_stream(self, prompt: str, *, max_tokens: Optional[int] = None, seed: Optional[int] = None,
                       priority: Optional[str] = None, request_id: Optional[str] = None) -> AsyncIterator[ProcessEvent]:
        """The async ``process_stream``: an async iterator of ``ProcessEvent``."""
        return self._stream(_process_stream(prompt, max_tokens, seed, priority), request_id)

    async def generate(self, prompt: str, *, max_tokens: Optional[int] = None, seed: Optional[int] = None,
                       priority: Optional[str] = None, request_id: Optional[str] = None) -> Generation:
        d, m = await self.request("POST", GENERATE, _core.generation_body(prompt, max_tokens, seed, priority), request_id=request_id)
        return Generation.from_json(d or {}, **m)

    def generate_stream(self, prompt: str, *, max_tokens: Optional[int] = None, seed: Optional[int] = None,
                        priority: Optional[str] = None, request_id: Optional[str] = None) -> AsyncIterator[TokenEvent]:
        """The async ``generate_stream``: an async iterator of ``TokenEvent``."""
        return self._stream(_generate_stream(prompt, max_tokens, seed, priority), request_id)

    async def enrich(self, text: str, *, id: Optional[str] = None, title: Optional[str] = None,
                     metadata: Optional[Mapping[str, Any]] = None, request_id: Optional[str] = None) -> Enrichment:
        d, m = await self.request("POST", ENRICH, _core.enrich_body(text, id, title, metadata), request_id=request_id)
        return Enrichment.from_json(d or {}, **m)

    async def submit_job(self, prompt: str, *, max_tokens: Optional[int] = None, seed: Optional[int] = None,
                         priority: Optional[str] = None, callback_url: Optional[str] = None,
                         request_id: Optional[str] = None) -> JobSubmission:
        extra = {"callback_url": callback_url} if callback_url else None
        d, m = await self.request("POST", SUBMIT, _core.generation_body(prompt, max_tokens, seed, priority, extra), request_id=request_id)
        return JobSubmission.from_json(d or {}, **m)

    async def get_job(self, job: JobRef, *, request_id: Optional[str] = None) -> Job:
        d, m = await self.request("GET", _core.job_path(job), request_id=request_id)
        return Job.from_json(d or {}, **m)

    def watch_job(self, job: JobRef, *, request_id: Optional[str] = None) -> AsyncIterator[JobEvent]:
        """The async ``watch_job``: an async iterator of ``JobEvent``."""
        return self._stream(_job_events(job), request_id)

    async def _stream(self, stream: _core.Stream, request_id: Optional[str]) -> AsyncIterator[Any]:
        """The async ``Client._stream``."""
        try:
            resp = await self._http.send(stream.request(self._http, request_id), stream=True)
        except httpx.TransportError as e:
            raise stream.transport_error(e) from e
        try:
            if not stream.opened(resp):
                await resp.aread()
                for event in stream.answer(resp):
                    yield event
                return
            async for line in resp.aiter_lines():
                event = stream.feed(line)
                if event is not None:
                    yield event
                    if stream.last(event):
                        return
            event = stream.end()
            if event is not None:
                yield event
        finally:
            await resp.aclose()

    async def wait_for_job(self, job: JobRef, *, timeout: float = 60.0, interval: float = 0.25,
                           raise_on_failure: bool = True) -> Job:
        deadline = time.monotonic() + timeout
        while True:
            current = await self.get_job(job)
            if current.is_final:
                if current.status == "failed" and raise_on_failure:
                    raise JobFailedError(current)
                return current
            left = deadline - time.monotonic()
            if left <= 0:
                raise JobTimeoutError(current.job_id, timeout, current)
            await anyio.sleep(min(interval, left))
