"""The synchronous client against the running stack."""

from __future__ import annotations

import uuid

import pytest

from api_gateway_client import (
    Client,
    GatewayError,
    JobFailedError,
    JobSubmission,
    NotFoundError,
    ServiceUnavailableError,
    ValidationError,
)

FOX = "The quick brown fox jumps over the lazy dog. It was not amused."


@pytest.fixture
def gw(gateway_url: str):
    with Client(gateway_url) as c:
        yield c


def test_process_runs_generation_then_enrichment(gw: Client) -> None:
    r = gw.process("The fox and the", max_tokens=20, seed=7)
    assert r.status_code == 200
    assert r.request_id
    assert r.generation.text and r.generation.seed == 7
    assert [s.name for s in r.steps] == ["generation", "enrichment"]
    assert all(s.status == 200 for s in r.steps)
    # the enrichment step enriched the generated text
    assert r.result.word_count > 0
    assert r.result.text.split()[0] in r.generation.text


def test_generate_is_deterministic_for_a_seed_and_keeps_the_callers_request_id(gw: Client) -> None:
    a = gw.generate("Once upon a time", max_tokens=12, seed=42, request_id="sdk-test.generate-1")
    b = gw.generate("Once upon a time", max_tokens=12, seed=42)
    assert a.text == b.text and a.text
    assert 0 < a.tokens <= 12
    assert b.cached
    assert a.request_id == "sdk-test.generate-1"
    assert b.request_id and b.request_id != a.request_id


def test_enrich(gw: Client) -> None:
    r = gw.enrich(FOX, id="doc-1", title="Fox", metadata={"source": "sdk"})
    assert r.language == "en"
    assert r.word_count == 13 and r.sentence_count == 2
    assert r.id == "doc-1" and r.metadata == {"source": "sdk"}
    assert any(k.word == "fox" for k in r.keywords)
    assert r.request_id
    assert "cleaning" in r.raw


def test_job_submitted_and_waited_to_done(gw: Client) -> None:
    sub = gw.submit_job("Once upon a time", max_tokens=20, seed=3)
    assert isinstance(sub, JobSubmission)
    assert sub.status_code == 202 and sub.request_id
    assert sub.status_url == f"/api/v1/jobs/{sub.job_id}"
    job = gw.wait_for_job(sub, timeout=20, interval=0.1)
    assert job.status == "done" and job.error is None
    assert {"queued", "generating", "enriching", "done"} <= set(job.stages)
    assert job.result is not None
    assert job.result.generation.text and job.result.result.word_count > 0
    # by id too
    again = gw.get_job(sub.job_id)
    assert again.status == "done" and again.request_id and again.request_id != job.request_id


def test_unknown_job_is_a_typed_not_found_with_the_request_id(gw: Client) -> None:
    with pytest.raises(NotFoundError) as e:
        gw.get_job(str(uuid.uuid4()), request_id="sdk-test.unknown-job")
    err = e.value
    assert isinstance(err, GatewayError)
    assert err.status == 404 and err.error == "not_found"
    assert err.request_id == "sdk-test.unknown-job"
    assert err.body["request_id"] == "sdk-test.unknown-job"


def test_backend_errors_are_typed_and_carry_the_gateways_request_id(gw: Client) -> None:
    # 422 from api-generation (its body has no request_id: the header gives it)
    with pytest.raises(ValidationError) as e:
        gw.generate("   ")
    assert e.value.status == 422 and e.value.error == "validation_error"
    assert e.value.request_id
    # 404 from the gateway itself (no route)
    with pytest.raises(NotFoundError) as e2:
        gw.request("GET", "/api/v3/anything")
    assert e2.value.error == "not_found"
    assert e2.value.request_id and e2.value.request_id == e2.value.body["request_id"]



def test_a_failed_job_raises_job_failed_error_or_is_returned(gw: Client) -> None:
    # the gateway accepts any JSON object; api-generation then refuses the blank prompt
    sub = gw.submit_job("   ")
    with pytest.raises(JobFailedError) as e:
        gw.wait_for_job(sub, timeout=20, interval=0.1)
    assert e.value.job.status == "failed" and "422" in (e.value.job.error or "")
    assert e.value.request_id
    job = gw.wait_for_job(sub.job_id, timeout=20, raise_on_failure=False)
    assert job.status == "failed" and job.result is None and "failed" in job.stages


def test_generate_stream_yields_the_pieces_then_the_usage(gw: Client) -> None:
    plain = gw.generate("Once upon a time", max_tokens=12, seed=5)
    events = list(gw.generate_stream("Once upon a time", max_tokens=12, seed=5))
    assert len(events) == 13
    assert all(not e.done for e in events[:-1])
    assert "".join(e.text for e in events[:-1]) == plain.text
    last = events[-1]
    assert last.done and last.tokens == 12 and last.seed == 5 and last.model == plain.model


def test_generate_stream_stops_when_the_caller_does(gw: Client) -> None:
    stream = gw.generate_stream("The wolf", max_tokens=50, seed=1)
    first = next(stream)
    assert first.text and not first.done
    stream.close()  # closes the connection; the backend stops sending
    # the client is still usable
    assert gw.generate("The wolf", max_tokens=3, seed=1).tokens == 3


def test_generate_stream_raises_before_streaming(gw: Client) -> None:
    with pytest.raises(ValidationError):
        list(gw.generate_stream(" ", max_tokens=3))


def test_watch_job_follows_each_state_to_the_result(gw: Client) -> None:
    sub = gw.submit_job("Once upon a time", max_tokens=10, seed=4)
    events = list(gw.watch_job(sub))
    assert [e.status for e in events] == ["queued", "generating", "enriching", "done"]
    assert all(e.job_id == sub.job_id and e.at for e in events)
    last = events[-1]
    assert last.is_final and last.job is not None and last.job.result is not None
    assert last.job.result.generation.tokens == 10


def test_watch_job_stops_when_the_caller_does_and_refuses_unknown_ids(gw: Client) -> None:
    sub = gw.submit_job("The wolf", max_tokens=5)
    stream = gw.watch_job(sub.job_id)
    assert next(stream).status == "queued"
    stream.close()  # closes the connection
    assert gw.get_job(sub).job_id == sub.job_id
    with pytest.raises(NotFoundError):
        list(gw.watch_job(str(uuid.uuid4())))


def test_process_stream_yields_the_pieces_the_usage_then_the_pipelines_answer(gw: Client) -> None:
    plain = gw.process("The fox and the", max_tokens=12, seed=9)
    events = list(gw.process_stream("The fox and the", max_tokens=12, seed=9))
    assert len(events) == 14
    pieces, usage, last = events[:12], events[12], events[13]
    assert all(not e.done and e.result is None for e in pieces)
    assert "".join(e.text for e in pieces) == plain.generation.text
    assert usage.done and usage.tokens == 12 and usage.seed == 9 and usage.result is None
    r = last.result
    assert r is not None and r.request_id and r.status_code == 200
    assert r.generation.text == plain.generation.text and r.generation.tokens == 12
    assert [s.name for s in r.steps] == ["generation", "enrichment"]
    # the same enrichment of the same text
    assert r.result.text == plain.result.text and r.result.word_count == plain.result.word_count
    assert r.result.keywords == plain.result.keywords


def test_process_stream_stops_when_the_caller_does_and_raises_before_streaming(gw: Client) -> None:
    stream = gw.process_stream("The wolf", max_tokens=200, seed=1)
    first = next(stream)
    assert first.text and not first.done and first.result is None
    stream.close()  # closes the connection: the generation stops
    with pytest.raises(ValidationError) as e:
        list(gw.process_stream(" ", max_tokens=3))
    assert e.value.error == "step_rejected"


def test_process_stream_raises_an_error_event_typed(scripted) -> None:
    # a step failing after the stream started (a scripted server: the real stack's
    # enrichment does not fail on demand)
    body = (
        b'data: {"text":"The"}\n\n'
        b'event: error\ndata: {"error":"step_unavailable","message":"no target","request_id":"r-1"}\n\n'
    )
    s = scripted([(200, {"content-type": "text/event-stream"}, body)])
    with Client(s.url) as gw:
        stream = gw.process_stream("The fox")
        assert next(stream).text == "The"
        with pytest.raises(ServiceUnavailableError) as e:
            next(stream)
    assert e.value.error == "step_unavailable" and e.value.request_id == "r-1"
