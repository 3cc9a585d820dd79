"""Retries on 429/503 honouring Retry-After, and the rate-limit headers. The routes
of the default table have no rate_limit plugin, so a local scripted server plays
the gateway's 429/503 answers (same JSON error shape and headers)."""

from __future__ import annotations

import time

import pytest

from api_gateway_client import (
    AsyncClient,
    Client,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
    TransportError,
)

GEN = {"text": "hello", "model": "m", "tokens": 1, "cached": False, "duration_ms": 0.1, "seed": 1}


def limited(after: str) -> tuple[int, dict[str, str], dict[str, str]]:
    return (
        429,
        {
            "retry-after": after,
            "ratelimit": "limit=2, remaining=0, reset=1",
            "ratelimit-policy": "2;w=60",
            "x-ratelimit-limit": "2",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": after,
        },
        {"error": "rate_limited", "message": "too many requests", "request_id": "ignored-the-header-wins"},
    )


OK = (200, {"x-ratelimit-limit": "2", "x-ratelimit-remaining": "1", "x-ratelimit-reset": "60"}, GEN)


def test_429_is_retried_after_retry_after_then_succeeds(scripted) -> None:
    s = scripted([limited("1"), OK])
    started = time.monotonic()
    with Client(s.url) as gw:
        r = gw.generate("x")
    assert time.monotonic() - started >= 1.0  # waited what the server asked
    assert len(s.requests) == 2
    assert r.text == "hello" and r.request_id == "scripted-2"
    assert r.rate_limit is not None
    assert (r.rate_limit.limit, r.rate_limit.remaining, r.rate_limit.reset) == (2, 1, 60)


def test_retries_give_up_with_a_typed_error_carrying_retry_after_and_rate_limit(scripted) -> None:
    s = scripted([limited("0")])
    with Client(s.url, max_retries=2) as gw, pytest.raises(RateLimitError) as e:
        gw.process("x")
    assert len(s.requests) == 3  # one try + two retries
    err = e.value
    assert err.status == 429 and err.error == "rate_limited" and err.retry_after == 0
    assert err.request_id == "scripted-3"
    assert err.rate_limit is not None and err.rate_limit.remaining == 0 and err.rate_limit.policy == "2;w=60"


def test_a_retry_after_longer_than_the_policy_allows_is_not_waited(scripted) -> None:
    s = scripted([limited("120"), OK])
    with Client(s.url, retry=RetryPolicy(max_retry_after=5)) as gw, pytest.raises(RateLimitError) as e:
        gw.generate("x")
    assert len(s.requests) == 1 and e.value.retry_after == 120


def test_post_503_is_retried_only_with_retry_after(scripted) -> None:
    unavailable = {"error": "breaker_open", "message": "upstream unavailable"}
    s = scripted([(503, {"retry-after": "0"}, unavailable), OK])
    with Client(s.url) as gw:
        assert gw.generate("x").text == "hello"
    assert len(s.requests) == 2

    s2 = scripted([(503, {}, unavailable), OK])
    with Client(s2.url) as gw, pytest.raises(ServiceUnavailableError) as e:
        gw.generate("x")
    assert len(s2.requests) == 1  # a POST 503 without Retry-After may have had effects
    assert e.value.error == "breaker_open" and e.value.request_id == "scripted-1"


def test_get_503_is_retried_with_backoff(scripted) -> None:
    job = {"job_id": "j1", "status": "done", "stages": {"done": "t"}}
    s = scripted([(503, {}, {"error": "job_store_unavailable", "message": "x"}), (200, {}, job)])
    with Client(s.url, retry=RetryPolicy(backoff=0.01)) as gw:
        assert gw.get_job("j1").status == "done"
    assert len(s.requests) == 2 and s.requests[0]["path"] == "/api/v1/jobs/j1"


def test_connection_refused_is_a_transport_error() -> None:
    with Client("http://127.0.0.1:9", retry=RetryPolicy(max_retries=1, backoff=0.01)) as gw:
        with pytest.raises(TransportError):
            gw.generate("x")


@pytest.mark.anyio
async def test_async_429_is_retried_after_retry_after(scripted) -> None:
    s = scripted([limited("1"), OK])
    started = time.monotonic()
    async with AsyncClient(s.url) as gw:
        r = await gw.generate("x")
    assert time.monotonic() - started >= 1.0
    assert len(s.requests) == 2 and r.request_id == "scripted-2"


def test_credentials_are_sent(scripted) -> None:
    s = scripted([OK])
    with Client(s.url, api_key="k-123") as gw:
        gw.generate("x")
    with Client(s.url, token="jwt.abc") as gw:
        gw.generate("x")
    sent = [{k.lower(): v for k, v in r["headers"].items()} for r in s.requests]
    assert sent[0].get("x-api-key") == "k-123" and "authorization" not in sent[0]
    assert sent[1].get("authorization") == "Bearer jwt.abc" and "x-api-key" not in sent[1]
    with pytest.raises(ValueError):
        Client(s.url, api_key="a", token="b")
