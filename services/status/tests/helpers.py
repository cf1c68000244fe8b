"""Event builders for the status tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from captionqc.schemas import (
    AsrCompleted,
    AsrStats,
    CaptionSegment,
    CheckKind,
    CloudEvent,
    CrosscheckCompleted,
    EngineInfo,
    EventType,
    FailureReason,
    FindingsSummary,
    JobRequested,
    MediaRef,
    OcrCompleted,
    OcrStats,
    Severity,
    Stage,
    StageFailed,
    StageProgress,
    TimedWord,
    TypoFinding,
    failed_type,
    new_event,
    progress_type,
)

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
ENGINE = EngineInfo(name="test-engine", version="1")


def new_job_id() -> str:
    return str(uuid.uuid4())


def _with_trace(event: CloudEvent[Any], trace_id: str | None) -> CloudEvent[Any]:
    if trace_id is None:
        return event
    return event.model_copy(update={"extensions": {"traceparent": f"00-{trace_id}-{'1' * 16}-01"}})


def requested(
    job_id: str,
    tenant: str = "acme",
    *,
    at: datetime = T0,
    callback_url: str | None = None,
    trace_id: str | None = None,
) -> CloudEvent[Any]:
    payload = JobRequested(
        job_id=job_id,
        tenant=tenant,
        media=MediaRef(uri="gs://media/clip.mp4"),
        callback_url=callback_url,
        requested_at=at,
    )
    return _with_trace(new_event(EventType.JOB_REQUESTED, payload, source="//captionqc/gateway", time=at), trace_id)


def progress(job_id: str, stage: Stage, value: float, tenant: str = "acme", *, at: datetime = T0) -> CloudEvent[Any]:
    payload = StageProgress(job_id=job_id, tenant=tenant, stage=stage, progress=value, message=f"{value:.0%} done")
    return new_event(progress_type(stage), payload, source=f"//captionqc/{stage.value}", time=at)


SEGMENTS = [
    CaptionSegment(start_s=0.0, end_s=2.0, text="The wether is fine today", confidence=0.9),
    CaptionSegment(start_s=2.5, end_s=4.0, text="Rain <later> & wind", confidence=0.8),
]


def ocr_completed(
    job_id: str,
    tenant: str = "acme",
    *,
    at: datetime = T0,
    result_uri: str | None = None,
    trace_id: str | None = None,
) -> CloudEvent[Any]:
    payload = OcrCompleted(
        job_id=job_id,
        tenant=tenant,
        segments=None if result_uri else SEGMENTS,
        result_uri=result_uri,
        engine=ENGINE,
        stats=OcrStats(media_duration_s=4.0, frames_sampled=8, frames_ocred=8, processing_s=1.5),
    )
    return _with_trace(new_event(EventType.OCR_COMPLETED, payload, source="//captionqc/ocr", time=at), trace_id)


def asr_completed(
    job_id: str, tenant: str = "acme", *, at: datetime = T0, trace_id: str | None = None
) -> CloudEvent[Any]:
    payload = AsrCompleted(
        job_id=job_id,
        tenant=tenant,
        words=[TimedWord(start_s=0.1, end_s=0.4, word="the", confidence=0.9)],
        engine=ENGINE,
        stats=AsrStats(media_duration_s=4.0, processing_s=2.0, real_time_factor=0.5),
    )
    return _with_trace(new_event(EventType.ASR_COMPLETED, payload, source="//captionqc/asr", time=at), trace_id)


FINDINGS = [
    TypoFinding(
        id="f1",
        start_s=0.0,
        end_s=2.0,
        caption_text="The wether is fine today",
        word="wether",
        suggestion="weather",
        kind=CheckKind.MISSPELLING,
        confidence=0.93,
        severity=Severity.ERROR,
    ),
    TypoFinding(
        id="f2",
        start_s=2.5,
        end_s=4.0,
        caption_text="Rain <later> & wind",
        word="wind",
        suggestion="=1+1",
        kind=CheckKind.WRONG_WORD,
        confidence=0.6,
        severity=Severity.WARNING,
    ),
]


def crosscheck_completed(
    job_id: str, tenant: str = "acme", *, at: datetime = T0, findings: list[TypoFinding] | None = None
) -> CloudEvent[Any]:
    found = FINDINGS if findings is None else findings
    counts: dict[CheckKind, int] = {}
    for finding in found:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    payload = CrosscheckCompleted(job_id=job_id, tenant=tenant, findings=found, summary=FindingsSummary(counts=counts))
    return new_event(EventType.CROSSCHECK_COMPLETED, payload, source="//captionqc/crosscheck", time=at)


def failed(
    job_id: str,
    stage: Stage,
    reason: FailureReason = FailureReason.NO_AUDIO_STREAM,
    tenant: str = "acme",
    *,
    at: datetime = T0,
) -> CloudEvent[Any]:
    payload = StageFailed(job_id=job_id, tenant=tenant, stage=stage, reason=reason, message="the media has no audio")
    return new_event(failed_type(stage), payload, source=f"//captionqc/{stage.value}", time=at)


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


SECRET = "status-test-secret-" + "x" * 24


def make_settings(db_url: str, project: str, **overrides: Any) -> Any:
    from pydantic import SecretStr

    from captionqc.status.settings import StatusSettings

    values: dict[str, Any] = {
        "gcp_project": project,
        "database_url": SecretStr(db_url),
        "jwt_secret": SecretStr(SECRET),
        "sweep_interval_s": 60.0,
        "webhook_poll_interval_s": 0.2,
        "webhook_backoff_initial_s": 0.2,
        "webhook_backoff_max_s": 0.5,
        "stream_poll_interval_s": 0.2,
        **overrides,
    }
    return StatusSettings(**values)


def token(tenant: str = "acme", scopes: tuple[str, ...] = ("jobs:read",)) -> dict[str, str]:
    from captionqc.runtime.http.auth import mint_local_token

    return {"Authorization": f"Bearer {mint_local_token(SECRET, tenant=tenant, scopes=scopes)}"}
