"""The resources of the gateway's API as dataclasses. Every result carries the
answer's ``request_id`` (``X-Request-ID``), its HTTP ``status``, its rate-limit
headers (``rate_limit``, ``None`` when the route has no limit) and the parsed JSON
(``raw``), so fields a newer gateway adds are never lost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Optional

from ._ratelimit import RateLimit

JobStatus = Literal["queued", "generating", "enriching", "done", "failed"]
Priority = Literal["low", "normal", "high"]
FINAL_STATUSES: frozenset[str] = frozenset({"done", "failed"})


@dataclass(kw_only=True)
class Meta:
    """What every result carries besides its own fields."""

    request_id: Optional[str] = None
    status_code: int = 200
    rate_limit: Optional[RateLimit] = None
    raw: Any = field(default=None, repr=False)


@dataclass(kw_only=True)
class Generation(Meta):
    """Answer of ``POST /api/v2/generate`` (api-generation)."""

    text: str
    model: str
    tokens: int
    cached: bool
    duration_ms: float
    seed: int

    @classmethod
    def from_json(cls, d: dict[str, Any], **meta: Any) -> "Generation":
        return cls(
            text=d.get("text", ""),
            model=d.get("model", ""),
            tokens=int(d.get("tokens", 0)),
            cached=bool(d.get("cached", False)),
            duration_ms=float(d.get("duration_ms", 0.0)),
            seed=int(d.get("seed", 0)),
            raw=d,
            **meta,
        )


@dataclass(kw_only=True)
class Keyword:
    word: str
    count: int


@dataclass(kw_only=True)
class Enrichment(Meta):
    """Answer of ``POST /api/v2/enrich`` (api-enrichment). Fields not listed here
    (``cleaning``, ``readability``, ``sources``, ``external``...) are in ``raw``."""

    text: str
    language: str
    language_confidence: float
    word_count: int
    sentence_count: int
    character_count: int
    keywords: list[Keyword]
    metadata: dict[str, Any]
    warnings: list[str]
    degraded: bool
    id: Optional[str] = None
    title: Optional[str] = None

    @classmethod
    def from_json(cls, d: dict[str, Any], **meta: Any) -> "Enrichment":
        return cls(
            text=d.get("text", ""),
            language=d.get("language", "und"),
            language_confidence=float(d.get("language_confidence", 0.0)),
            word_count=int(d.get("word_count", 0)),
            sentence_count=int(d.get("sentence_count", 0)),
            character_count=int(d.get("character_count", 0)),
            keywords=[
                Keyword(word=str(k.get("word", "")), count=int(k.get("count", 0)))
                for k in d.get("keywords") or []
                if isinstance(k, dict)
            ],
            metadata=dict(d.get("metadata") or {}),
            warnings=list(d.get("warnings") or []),
            degraded=bool(d.get("degraded", False)),
            id=d.get("id"),
            title=d.get("title"),
            raw=d,
            **meta,
        )


@dataclass(kw_only=True)
class Step:
    """One step of a pipeline run."""

    name: str
    upstream: str
    status: int
    duration_ms: float


@dataclass(kw_only=True)
class PipelineResult(Meta):
    """Answer of ``POST /api/v1/process``: generation, then enrichment of its text."""

    result: Enrichment
    generation: Generation
    steps: list[Step]

    @classmethod
    def from_json(cls, d: dict[str, Any], **meta: Any) -> "PipelineResult":
        return cls(
            result=Enrichment.from_json(d.get("result") or {}),
            generation=Generation.from_json(d.get("generation") or {}),
            steps=[
                Step(
                    name=str(s.get("name", "")),
                    upstream=str(s.get("upstream", "")),
                    status=int(s.get("status", 0)),
                    duration_ms=float(s.get("duration_ms", 0.0)),
                )
                for s in d.get("steps") or []
                if isinstance(s, dict)
            ],
            raw=d,
            **meta,
        )


@dataclass(kw_only=True)
class JobSubmission(Meta):
    """Answer (202) of ``POST /api/v1/async-process``."""

    job_id: str
    status_url: str

    @classmethod
    def from_json(cls, d: dict[str, Any], **meta: Any) -> "JobSubmission":
        return cls(job_id=str(d.get("job_id", "")), status_url=str(d.get("status_url", "")), raw=d, **meta)


@dataclass(kw_only=True)
class JobCallback:
    """Webhook delivery state of a job submitted with ``callback_url``."""

    url: str
    status: str
    attempts: int
    last_error: Optional[str] = None


@dataclass(kw_only=True)
class Job(Meta):
    """Answer of ``GET /api/v1/jobs/{job_id}`` (also the body of a job webhook).

    ``stages`` maps each stage reached (``queued``, ``generating``, ``enriching``,
    ``done``/``failed``) to its RFC 3339 timestamp. ``result`` is set when ``done``,
    ``error`` when ``failed``."""

    job_id: str
    status: JobStatus
    stages: dict[str, str]
    result: Optional[PipelineResult] = None
    error: Optional[str] = None
    callback: Optional[JobCallback] = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_json(cls, d: dict[str, Any], **meta: Any) -> "Job":
        cb = d.get("callback")
        return cls(
            job_id=str(d.get("job_id", "")),
            status=d.get("status", "queued"),
            stages=dict(d.get("stages") or {}),
            result=PipelineResult.from_json(d["result"]) if isinstance(d.get("result"), dict) else None,
            error=d.get("error") if isinstance(d.get("error"), str) else (None if d.get("error") is None else str(d.get("error"))),
            callback=JobCallback(
                url=str(cb.get("url", "")),
                status=str(cb.get("status", "")),
                attempts=int(cb.get("attempts", 0)),
                last_error=cb.get("last_error"),
            )
            if isinstance(cb, dict)
            else None,
            raw=d,
            **meta,
        )


@dataclass(kw_only=True)
class TokenEvent:
    """One event of ``generate_stream``: a piece of the text, or (``done``) the usage.

    The pieces joined are the ``text`` of ``generate`` for the same seed."""

    text: str = ""
    done: bool = False
    tokens: Optional[int] = None
    model: Optional[str] = None
    seed: Optional[int] = None
    duration_ms: Optional[float] = None
    cached: Optional[bool] = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TokenEvent":
        return cls(
            text=d.get("text", ""),
            done=bool(d.get("done", False)),
            tokens=d.get("tokens"),
            model=d.get("model"),
            seed=d.get("seed"),
            duration_ms=d.get("duration_ms"),
            cached=d.get("cached"),
        )



@dataclass(kw_only=True)
class ProcessEvent(TokenEvent):
    """One event of ``process_stream``: a piece of the generated text (``text``), the
    generation's usage (``done``), then, last, the pipeline's whole answer (``result``:
    what ``process`` returns, the enrichment of the joined text included)."""

    result: Optional[PipelineResult] = None

    @classmethod
    def of(cls, name: Optional[str], d: dict[str, Any], **meta: Any) -> "ProcessEvent":
        if name == "result":
            return cls(result=PipelineResult.from_json(d, **meta))
        return cls(**asdict(TokenEvent.from_json(d)))


@dataclass(kw_only=True)
class JobEvent:
    """One event of ``watch_job``: a state the job entered (``queued``, ``generating``,
    ``enriching``, then ``done`` or ``failed``), and when (``at``). The last one
    (``is_final``) carries the whole ``job`` (its ``result`` or ``error``)."""

    job_id: str
    status: JobStatus
    at: Optional[str] = None
    job: Optional[Job] = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_json(cls, name: Optional[str], d: dict[str, Any]) -> "JobEvent":
        status = d.get("status") or name or "queued"
        job = Job.from_json(d) if status in FINAL_STATUSES else None
        at = d.get("at")
        if at is None and job is not None:
            at = job.stages.get(status)
        return cls(job_id=str(d.get("job_id", "")), status=status, at=at, job=job)
