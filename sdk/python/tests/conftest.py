"""Tests run against a running stack: ``GATEWAY_URL`` (default the one
``scripts/stack.sh`` starts). ``tests/sdk.rs`` starts a stack on free ports and sets
``GATEWAY_URL``, ``WEBHOOK_SECRET`` and ``SDK_TEST_WEBHOOKS=1`` (its async route lets
callbacks reach 127.0.0.1)."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest

GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")


@pytest.fixture
def gateway_url() -> str:
    return GATEWAY_URL


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Scripted:
    """A local HTTP server answering each request with the next scripted
    ``(status, headers, body)`` (a JSON value, or bytes sent as they are); the last one
    repeats. Records what it received."""

    def __init__(self, answers: list[tuple[int, dict[str, str], Any]]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
                status, headers, payload = outer.answers[min(len(outer.requests), len(outer.answers)) - 1]
                # bytes are sent as they are (e.g. an event stream), anything else as JSON
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", headers.get("content-type", "application/json"))
                self.send_header("content-length", str(len(data)))
                self.send_header("x-request-id", f"scripted-{len(outer.requests)}")
                for k, v in headers.items():
                    if k != "content-type":
                        self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[[list[tuple[int, dict[str, str], Any]]], Scripted]]:
    servers: list[Scripted] = []

    def make(answers: list[tuple[int, dict[str, str], Any]]) -> Scripted:
        s = Scripted(answers)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()
