"""Event payloads: what each stage announces on Pub/Sub.

Every payload carries ``job_id``, ``tenant`` and ``schema_version``. Payloads are ids, URIs and small results,
never media: a result too large for one message travels as a claim check (``result_uri``).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, Field, model_validator

from captionqc.schemas.base import Contract

SCHEMA_VERSION = 1

# A job id is a UUID rendered as text (the gateway makes UUID4s; upstream publishers may use any UUID).
JobId = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
# Tenants are short slugs; they scope every query and appear in logs, so no personal data in them.
Tenant = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
# BCP-47 language tag, e.g. en-US, en, pt-BR, zh-Hant-TW.
LanguageTag = Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)]
Seconds = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Confidence = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


def _no_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _storable(value: str) -> str:
    """No control characters (NUL cannot be stored in PostgreSQL text or JSONB) and no unpaired surrogates."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError(f"must not contain control characters or unpaired surrogates (found U+{ord(char):04X})")
    return value


Word = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_no_blank), AfterValidator(_storable)]
# URIs and URLs: validated further where they are used (the media URI policy, the callback host check).
Uri = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(_storable)]


class Stage(StrEnum):
    """A processing stage of a job."""

    OCR = "ocr"
    ASR = "asr"
    CROSSCHECK = "crosscheck"


class CheckKind(StrEnum):
    """What the cross-check can report; a job may switch kinds off."""

    MISSPELLING = "misspelling"
    WRONG_WORD = "wrong_word"
    NUMBER_MISMATCH = "number_mismatch"
    CAPTION_NOT_SPOKEN = "caption_not_spoken"
    SPEECH_NOT_CAPTIONED = "speech_not_captioned"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class FailureReason(StrEnum):
    """Why a stage gave up on a job. Permanent by definition: transient failures are retried, not reported."""

    MEDIA_NOT_FOUND = "media_not_found"
    MEDIA_UNREADABLE = "media_unreadable"
    NO_VIDEO_STREAM = "no_video_stream"
    NO_AUDIO_STREAM = "no_audio_stream"
    MEDIA_TOO_LONG = "media_too_long"
    UNSUPPORTED_CODEC = "unsupported_codec"
    MEDIA_URI_REJECTED = "media_uri_rejected"
    INVALID_EVENT = "invalid_event"
    UPSTREAM_FAILED = "upstream_failed"
    RESULT_MISSING = "result_missing"
    DEAD_LETTERED = "dead_lettered"
    ENGINE_ERROR = "engine_error"
    INTERNAL = "internal"


class MediaRef(Contract):
    uri: Uri
    content_type: Annotated[str, Field(max_length=255), AfterValidator(_storable)] | None = None


class RegionHint(Contract):
    """Where the captions sit, as fractions of the frame (0..1 from the top-left corner)."""

    x: Annotated[float, Field(ge=0.0, le=1.0)]
    y: Annotated[float, Field(ge=0.0, le=1.0)]
    width: Annotated[float, Field(gt=0.0, le=1.0)]
    height: Annotated[float, Field(gt=0.0, le=1.0)]

    @model_validator(mode="after")
    def _inside_frame(self) -> RegionHint:
        if self.x + self.width > 1.0 + 1e-9 or self.y + self.height > 1.0 + 1e-9:
            raise ValueError("region must lie inside the frame (x + width <= 1 and y + height <= 1)")
        return self


class JobOptions(Contract):
    glossary: Annotated[list[Word], Field(max_length=2000)] = Field(
        default_factory=list, description="Terms never to flag (names, jargon)."
    )
    ng_words: Annotated[list[Word], Field(max_length=2000)] = Field(
        default_factory=list, description="Words always to flag when they appear in a caption."
    )
    caption_region: RegionHint | None = Field(
        default=None, description="Where captions appear; default is the bottom third of the frame."
    )
    checks: Annotated[list[CheckKind], Field(min_length=1)] = Field(
        default_factory=lambda: list(CheckKind), description="Which kinds of finding to report."
    )


class JobRequested(Contract):
    """`captionqc.job.requested`: a job to check one media file. Published by the gateway or upstream systems."""

    schema_version: int = SCHEMA_VERSION
    job_id: JobId
    tenant: Tenant
    media: MediaRef
    language: LanguageTag = "en-US"
    options: JobOptions = Field(default_factory=JobOptions)
    callback_url: Uri | None = None
    requested_at: datetime


class BoundingBox(Contract):
    """Pixel box in the full frame."""

    x: Annotated[int, Field(ge=0)]
    y: Annotated[int, Field(ge=0)]
    width: Annotated[int, Field(ge=0)]
    height: Annotated[int, Field(ge=0)]


class CaptionSegment(Contract):
    """One caption as displayed, from the first to the last frame it was read on."""

    start_s: Seconds
    end_s: Seconds
    text: Annotated[str, Field(max_length=2000)]
    confidence: Confidence
    bbox: BoundingBox | None = None


class TimedWord(Contract):
    """One spoken word with its time span."""

    start_s: Seconds
    end_s: Seconds
    word: Annotated[str, Field(min_length=1, max_length=256)]
    confidence: Confidence


class EngineInfo(Contract):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[str, Field(min_length=1, max_length=64)]


class OcrStats(Contract):
    media_duration_s: Seconds
    frames_sampled: Annotated[int, Field(ge=0)]
    frames_ocred: Annotated[int, Field(ge=0)]
    processing_s: Seconds


class AsrStats(Contract):
    media_duration_s: Seconds
    processing_s: Seconds
    real_time_factor: Annotated[float, Field(ge=0.0)]


class _StageEvent(Contract):
    schema_version: int = SCHEMA_VERSION
    job_id: JobId
    tenant: Tenant


class _ClaimCheck(_StageEvent):
    """A result inline or, when too large for one message, at ``result_uri`` (JSON of the same model)."""

    result_uri: Annotated[str, Field(max_length=2048)] | None = None

    @model_validator(mode="after")
    def _one_of_inline_or_uri(self) -> _ClaimCheck:
        inline = getattr(self, self._inline_field())
        if (inline is None) == (self.result_uri is None):
            raise ValueError(f"exactly one of {self._inline_field()!r} and 'result_uri' must be set")
        return self

    @classmethod
    def _inline_field(cls) -> str:
        raise NotImplementedError

    def by_reference(self, result_uri: str) -> Self:
        """This result with its inline part left out and ``result_uri`` naming where all of it is stored."""
        return self.model_validate({**dict(self), self._inline_field(): None, "result_uri": result_uri})


class OcrCompleted(_ClaimCheck):
    """`captionqc.ocr.completed`: the captions read off the frames."""

    segments: list[CaptionSegment] | None = None
    engine: EngineInfo
    stats: OcrStats

    @classmethod
    def _inline_field(cls) -> str:
        return "segments"


class AsrCompleted(_ClaimCheck):
    """`captionqc.asr.completed`: the words heard in the audio."""

    words: list[TimedWord] | None = None
    language: LanguageTag = "en-US"
    engine: EngineInfo
    stats: AsrStats

    @classmethod
    def _inline_field(cls) -> str:
        return "words"


class StageProgress(_StageEvent):
    """`captionqc.<stage>.progress`: how far a stage has got (0..1)."""

    stage: Stage
    progress: Confidence
    message: Annotated[str, Field(max_length=500)] = ""


class StageFailed(_StageEvent):
    """`captionqc.<stage>.failed`: a stage gave up on the job, with a reason a person understands."""

    stage: Stage
    reason: FailureReason
    message: Annotated[str, Field(max_length=2000)]


class TypoFinding(Contract):
    """One caption word that a reviewer should look at."""

    id: Annotated[str, Field(min_length=1, max_length=64)]
    start_s: Seconds
    end_s: Seconds
    caption_text: Annotated[str, Field(max_length=2000)]
    word: Annotated[str, Field(max_length=256)]
    suggestion: Annotated[str, Field(max_length=256)] | None
    kind: CheckKind
    confidence: Confidence
    severity: Severity
    evidence: dict[str, str | float | int | bool | None] = Field(default_factory=dict)


class FindingsSummary(Contract):
    counts: dict[CheckKind, int] = Field(default_factory=dict)
    offset_s: float = 0.0
    caption_words: Annotated[int, Field(ge=0)] = 0
    spoken_words: Annotated[int, Field(ge=0)] = 0
    confirmed_share: Confidence = 0.0


class CrosscheckCompleted(_StageEvent):
    """`captionqc.crosscheck.completed`: the findings for a job. The job is done."""

    findings: list[TypoFinding]
    summary: FindingsSummary


class EventType(StrEnum):
    """Every event type on the wire: `captionqc.<stage>.<what-happened>`."""

    JOB_REQUESTED = "captionqc.job.requested"
    OCR_PROGRESS = "captionqc.ocr.progress"
    OCR_COMPLETED = "captionqc.ocr.completed"
    OCR_FAILED = "captionqc.ocr.failed"
    ASR_PROGRESS = "captionqc.asr.progress"
    ASR_COMPLETED = "captionqc.asr.completed"
    ASR_FAILED = "captionqc.asr.failed"
    CROSSCHECK_COMPLETED = "captionqc.crosscheck.completed"
    CROSSCHECK_FAILED = "captionqc.crosscheck.failed"


EventPayload = JobRequested | OcrCompleted | AsrCompleted | StageProgress | StageFailed | CrosscheckCompleted

PAYLOAD_TYPES: dict[EventType, type[EventPayload]] = {
    EventType.JOB_REQUESTED: JobRequested,
    EventType.OCR_PROGRESS: StageProgress,
    EventType.OCR_COMPLETED: OcrCompleted,
    EventType.OCR_FAILED: StageFailed,
    EventType.ASR_PROGRESS: StageProgress,
    EventType.ASR_COMPLETED: AsrCompleted,
    EventType.ASR_FAILED: StageFailed,
    EventType.CROSSCHECK_COMPLETED: CrosscheckCompleted,
    EventType.CROSSCHECK_FAILED: StageFailed,
}

SUPPORTED_SCHEMA_VERSIONS: frozenset[int] = frozenset({SCHEMA_VERSION})


def progress_type(stage: Stage) -> EventType:
    return EventType(f"captionqc.{stage.value}.progress")


def failed_type(stage: Stage) -> EventType:
    return EventType(f"captionqc.{stage.value}.failed")
