"""The async client against the running stack, and job webhooks."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from api_gateway_client import (
    AsyncClient,
    Client,
    JobTimeoutError,
    NotFoundError,
    sign_webhook,
    verify_webhook_signature,
)

SECRET = "s3cret"


def test_verify_webhook_signature_valid_and_tampered() -> None:
    body = b'{"job_id":"j","status":"done"}'
    header = sign_webhook(body, SECRET)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_webhook_signature(body, header, SECRET)
    assert verify_webhook_signature(body.decode(), header.upper().replace("SHA256=", "sha256="), SECRET.encode())
    assert not verify_webhook_signature(body.replace(b"done", b"dona"), header, SECRET)
    assert not verify_webhook_signature(body, header, "other-secret")
    assert not verify_webhook_signature(body, None, SECRET)
    assert not verify_webhook_signature(body, "sha256=zz", SECRET)
    assert not verify_webhook_signature(body, header[7:], SECRET)


@pytest.mark.anyio
async def test_async_pipeline_generate_enrich(gateway_url: str) -> None:
    async with AsyncClient(gateway_url) as gw:
        p = await gw.process("The fox and the", max_tokens=10, seed=1)
        g = await gw.generate("The fox and the", max_tokens=10, seed=1)
        e = await gw.enrich("Le renard et le chien sont dans le jardin avec les enfants.")
    assert p.generation.text == g.text  # same request, same seed: same text
    assert p.request_id and g.request_id and e.request_id
    assert e.language == "fr"


@pytest.mark.anyio
async def test_async_job_waited_to_done_and_unknown_job(gateway_url: str) -> None:
    async with AsyncClient(gateway_url) as gw:
        sub = await gw.submit_job("Once upon a time", max_tokens=10)
        job = await gw.wait_for_job(sub.job_id, timeout=20, interval=0.1)
        assert job.status == "done" and job.result is not None
        assert job.result.steps[0].name == "generation"
        with pytest.raises(NotFoundError) as e:
            await gw.get_job("not-a-job-id")
        assert e.value.request_id and e.value.error == "not_found"


def test_wait_for_job_times_out_with_the_last_state(scripted) -> None:
    # a job that stays `generating` (a scripted server: a real job is done too fast)
    s = scripted([(200, {}, {"job_id": "j1", "status": "generating", "stages": {"queued": "t", "generating": "t"}})])
    with Client(s.url) as gw, pytest.raises(JobTimeoutError) as e:
        gw.wait_for_job("j1", timeout=0.3, interval=0.05)
    assert e.value.job.job_id == "j1" and e.value.job.status == "generating" and not e.value.job.is_final
    assert len(s.requests) >= 2


@pytest.mark.skipif(
    os.environ.get("SDK_TEST_WEBHOOKS") != "1",
    reason="needs a gateway whose async route allows callbacks to 127.0.0.1 (tests/sdk.rs starts one)",
)
def test_webhook_from_the_gateway_verifies(gateway_url: str) -> None:
    secret = os.environ["WEBHOOK_SECRET"]
    got: list[dict[str, Any]] = []
    done = threading.Event()

    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            got.append({"body": body, "sig": self.headers.get("X-Signature"), "job": self.headers.get("X-Job-Id")})
            self.send_response(204)
            self.end_headers()
            done.set()

        def log_message(self, *a: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with Client(gateway_url) as gw:
            sub = gw.submit_job("Once upon a time", max_tokens=10, callback_url=f"http://127.0.0.1:{srv.server_address[1]}/hook")
            gw.wait_for_job(sub, timeout=20, interval=0.1)
            assert done.wait(20), "no webhook received"
    finally:
        srv.shutdown()
        srv.server_close()
    hook = got[0]
    assert hook["job"] == sub.job_id
    assert verify_webhook_signature(hook["body"], hook["sig"], secret)
    assert json.loads(hook["body"])["status"] == "done"
    assert not verify_webhook_signature(hook["body"] + b" ", hook["sig"], secret)
    assert not verify_webhook_signature(hook["body"], hook["sig"], secret + "x")


@pytest.mark.anyio
async def test_async_generate_stream(gateway_url: str) -> None:
    async with AsyncClient(gateway_url) as gw:
        plain = await gw.generate("The fox and the", max_tokens=8, seed=3)
        events = [e async for e in gw.generate_stream("The fox and the", max_tokens=8, seed=3)]
    assert "".join(e.text for e in events if not e.done) == plain.text
    assert events[-1].done and events[-1].tokens == 8


@pytest.mark.anyio
async def test_async_watch_job(gateway_url: str) -> None:
    async with AsyncClient(gateway_url) as gw:
        sub = await gw.submit_job("The fox and the", max_tokens=6)
        events = [e async for e in gw.watch_job(sub)]
    assert [e.status for e in events] == ["queued", "generating", "enriching", "done"]
    assert events[-1].job is not None and events[-1].job.status == "done"


@pytest.mark.anyio
async def test_async_process_stream(gateway_url: str) -> None:
    async with AsyncClient(gateway_url) as gw:
        plain = await gw.process("The fox and the", max_tokens=8, seed=3)
        events = [e async for e in gw.process_stream("The fox and the", max_tokens=8, seed=3)]
    pieces = [e for e in events if not e.done and e.result is None]
    assert "".join(e.text for e in pieces) == plain.generation.text
    assert events[-2].done and events[-2].tokens == 8
    last = events[-1].result
    assert last is not None and last.generation.text == plain.generation.text
    assert last.result.word_count == plain.result.word_count
