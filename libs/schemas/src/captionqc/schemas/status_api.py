"""HTTP API contracts of the status service (the query side), shared with the CLI.

Everything here is built from the read model the status service projects from the events; nothing in it is
authoritative for processing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from captionqc.schemas.base import Contract
from captionqc.schemas.events import CheckKind, FailureReason, Stage, TypoFinding


class JobState(StrEnum):
    """Where a job is. ``completed`` and ``failed`` are terminal: a job never leaves them."""

    ACCEPTED = "accepted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED)


class StageState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class CaptionsState(StrEnum):
    """Whether the OCR'd captions (for the WebVTT export) are in the read model."""

    PENDING = "pending"
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"


class StageView(Contract):
    state: StageState
    progress: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    message: str = Field(default="", description="The stage's latest progress message.")
    first_seen_at: datetime | None = Field(default=None, description="When the first event of this stage was seen.")
    completed_at: datetime | None = None
    seconds: float | None = Field(
        default=None,
        description="Wall-clock seconds of the stage: from the job request (OCR, ASR) or from the later of "
        "the OCR and ASR results (cross-check) to the stage's result.",
    )
    processing_s: float | None = Field(default=None, description="Processing time the engine itself reported.")


class JobStages(Contract):
    ocr: StageView
    asr: StageView
    crosscheck: StageView


class JobFailure(Contract):
    reason: FailureReason
    message: str
    stage: Stage | None = None


class CallbackState(StrEnum):
    """Where a job's webhook is: ``pending`` until it is sent (or while it is retried), then ``delivered``,
    ``refused`` (the URL breaks the callback policy: never sent) or ``failed`` (the receiver refused it or kept
    failing)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    REFUSED = "refused"
    FAILED = "failed"


class CallbackView(Contract):
    """The job's webhook (``callback_url``): whether it went out, and if not, why."""

    state: CallbackState
    attempts: int = Field(default=0, description="POSTs made so far.")
    last_status: int | None = Field(default=None, description="HTTP status of the receiver's last answer.")
    reason: str | None = Field(
        default=None,
        description="Why it was refused: the callback-policy rule the URL broke (`private_address`, `userinfo`, "
        "`host_not_allowed`, …), one of the refusal codes.",
    )
    message: str | None = Field(default=None, description="What went wrong last, for a person.")


class JobView(Contract):
    """A job as the status service sees it: state, per-stage progress and timings, finding counts, trace id."""

    job_id: str
    tenant: str
    state: JobState
    progress: Annotated[float, Field(ge=0.0, le=1.0)] = Field(description="Overall progress, 0..1.")
    stages: JobStages
    media_uri: str | None = Field(default=None, description="Unknown until the job's `job.requested` is seen.")
    language: str | None = None
    failure: JobFailure | None = None
    callback: CallbackView | None = Field(
        default=None,
        description="The job's webhook, if it asked for one. In a webhook's own body it is always `pending`.",
    )
    finding_counts: dict[CheckKind, int] = Field(default_factory=dict)
    findings_total: int = 0
    captions: CaptionsState = CaptionsState.PENDING
    trace_id: str | None = Field(default=None, description="W3C trace id of the job's trace (Cloud Trace).")
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = Field(default=None, description="When the job reached its final state.")


class JobPage(Contract):
    """One page of jobs, newest first. Pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[JobView]
    next_cursor: str | None = None


class JobFindings(Contract):
    job_id: str
    state: JobState
    findings: list[TypoFinding]
    finding_counts: dict[CheckKind, int] = Field(default_factory=dict)


class TimelineEvent(Contract):
    """One event seen for a job. Carries no media text: the summary says what happened, not what was read."""

    event_id: str
    type: str = Field(description="CloudEvents type, or `captionqc.status.*` for the status service's own entries.")
    time: datetime = Field(description="When the event happened (its `ce-time`).")
    received_at: datetime = Field(description="When the status service projected it.")
    source: str
    stage: Stage | None = None
    summary: str


class JobTimeline(Contract):
    job_id: str
    events: list[TimelineEvent]


class StreamEventName(StrEnum):
    """Server-Sent Event names of ``GET /v1/jobs/{id}/stream``; every ``data:`` line is a `JobView`."""

    PROGRESS = "progress"
    FINAL = "final"
