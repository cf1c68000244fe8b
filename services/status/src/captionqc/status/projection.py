"""The projector: how one event (or a dead letter, or a passed deadline) changes a job's read model.

No I/O here. The service locks the job rows, hands them to these functions in arrival order and writes back what
they changed. The rules that make the read model safe under at-least-once, out-of-order delivery live here:

- a result that arrives before ``job.requested`` still lands: the job row is created from whatever event comes
  first, and ``job.requested`` fills in the media, language, callback and creation time when it arrives;
- a job belongs to the tenant recorded for it: an event naming another tenant changes nothing and is not written
  into the job's timeline (it would tell the owner who else knows the job id). ``job.requested`` is the job's
  record of birth: events seen before it under another tenant were not the job's, and are forgotten;
- ``completed`` and ``failed`` are terminal: a finished job never moves back and never gains findings. Later
  progress and results only reach the timeline (and their stage's timings), never the job's state or counts;
- the first result of a stage wins: a second ``ocr.completed`` does not replace the captions, a second
  ``job.requested`` does not replace the media or the callback;
- progress never goes backwards (a late 40 % after a 60 % keeps 60 %).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from captionqc.runtime.tracing import trace_id_from_traceparent
from captionqc.schemas import (
    AsrCompleted,
    CaptionSegment,
    CloudEvent,
    CrosscheckCompleted,
    EventType,
    FailureReason,
    JobRequested,
    OcrCompleted,
    Stage,
    StageFailed,
    StageProgress,
    TypoFinding,
)
from captionqc.schemas.status_api import CaptionsState, JobState, StageState

_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DONE = (StageState.COMPLETED, StageState.FAILED)
_STAGE_NAMES = frozenset(s.value for s in Stage)
_TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED})
# What a job keeps when its ``job.requested`` shows that earlier events were another tenant's.
_KEPT_ON_RESET = frozenset({"job_id", "created_at", "updated_at", "first_seen_at", "loaded_row"})

# The status service's own timeline entries (not events on the wire).
DEAD_LETTERED_TYPE = "captionqc.status.dead-lettered"
DEADLINE_PASSED_TYPE = "captionqc.status.deadline-passed"
STATUS_SOURCE = "//captionqc/status"


@dataclass
class StageRecord:
    state: StageState = StageState.PENDING
    progress: float = 0.0
    message: str = ""
    first_seen_at: datetime | None = None
    completed_at: datetime | None = None
    seconds: float | None = None
    processing_s: float | None = None
    last_event_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.state in _DONE


@dataclass
class JobRecord:
    """One row of ``status.jobs``."""

    job_id: str
    tenant: str
    state: JobState
    created_at: datetime
    updated_at: datetime
    first_seen_at: datetime
    requested: bool = False
    media_uri: str | None = None
    language: str | None = None
    callback_url: str | None = None
    trace_id: str | None = None
    requested_at: datetime | None = None
    completed_at: datetime | None = None
    failure_reason: FailureReason | None = None
    failure_message: str | None = None
    failure_stage: Stage | None = None
    finding_counts: dict[str, int] = field(default_factory=dict)
    findings_total: int = 0
    captions_state: CaptionsState = CaptionsState.PENDING
    captions_note: str | None = None
    stages: dict[Stage, StageRecord] = field(default_factory=lambda: {s: StageRecord() for s in Stage})
    # The row as the database holds it, with its version (set by the repository): saving writes only the columns
    # that changed, and the version tells whether this record may be reused for the next batch.
    loaded_row: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        return self.state in _TERMINAL


@dataclass(frozen=True)
class TimelineRow:
    event_id: str
    job_id: str
    type: str
    time: datetime
    received_at: datetime
    source: str
    stage: Stage | None
    summary: str


@dataclass(frozen=True)
class FetchedCaptions:
    """The OCR'd captions of a claim-checked ``ocr.completed``, fetched before projecting (I/O stays outside)."""

    segments: list[CaptionSegment] | None
    note: str | None = None


@dataclass
class Projected:
    """What one input changed besides the job row."""

    # None: the input is not the job's (another tenant's event), so it is not even history.
    timeline: TimelineRow | None
    findings: list[TypoFinding] = field(default_factory=list)
    # Not None: replace the job's stored captions with these.
    segments: list[CaptionSegment] | None = None
    became_terminal: bool = False
    # The job was re-created by its ``job.requested``: what was stored for it before (timeline, findings,
    # captions) came from events of another tenant and must go.
    reset: bool = False


@dataclass(frozen=True)
class DeadLetter:
    """A message from the dead-letter topic, undecoded: it may be exactly what could not be decoded."""

    fingerprint: str
    job_id: str | None
    tenant: str | None
    event_id: str | None
    event_type: str | None
    reason: str
    message: str
    source_subscription: str | None
    attributes: dict[str, str]


def bounded_id(text: str, limit: int = 200) -> str:
    """``text`` if it fits a key column of ``limit`` characters, else a digest of it: CloudEvents sets no length
    limit on ``id`` or ``source``, and a key that does not fit must not fail the message forever."""
    if len(text) <= limit:
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def new_job(
    job_id: str, tenant: str, *, event_time: datetime, received_at: datetime, trace_id: str | None
) -> JobRecord:
    """The row a job gets from the first event seen for it, whichever that is."""
    return JobRecord(
        job_id=job_id,
        tenant=tenant,
        state=JobState.ACCEPTED,
        created_at=event_time,
        updated_at=received_at,
        first_seen_at=received_at,
        trace_id=trace_id,
    )


def event_trace_id(event: CloudEvent[Any]) -> str | None:
    return trace_id_from_traceparent(event.extensions.get("traceparent"))


def new_job_for_event(event: CloudEvent[Any], received_at: datetime) -> JobRecord:
    return new_job(
        event.data.job_id,
        event.data.tenant,
        event_time=event.time,
        received_at=received_at,
        trace_id=event_trace_id(event),
    )


def owns(job: JobRecord, event: CloudEvent[Any]) -> bool:
    """Whether ``event`` may change ``job``: its tenant is the job's, or it is the ``job.requested`` that records
    the job's tenant for the first time."""
    data = event.data
    return data.tenant == job.tenant or (isinstance(data, JobRequested) and not job.requested)


def project_event(
    job: JobRecord, event: CloudEvent[Any], *, received_at: datetime, captions: FetchedCaptions | None = None
) -> Projected:
    """Apply one decoded event to ``job`` (in place) and say what else it changed."""
    if not owns(job, event):
        # Internal publishers never do this. Not even the timeline: the owner must not learn who else has the id.
        return Projected(timeline=None)
    data = event.data
    stage = _stage_of(event.type)
    reset = False
    if isinstance(data, JobRequested) and not job.requested and data.tenant != job.tenant:
        _forget(job, data.tenant)
        reset = True
    was_terminal = job.terminal
    timeline = TimelineRow(
        event_id=bounded_id(event.id),
        job_id=job.job_id,
        type=event.type.value,
        time=event.time,
        received_at=received_at,
        source=event.source[:500],
        stage=stage,
        summary=_summary(event),
    )
    out = Projected(timeline=timeline, reset=reset)
    job.updated_at = received_at

    if isinstance(data, JobRequested):
        if job.requested:
            return out  # the first request is the job's: a second one (a forgery or a bug) is history only
        _apply_requested(job, event, data)
    elif isinstance(data, StageProgress):
        if job.terminal:
            return out  # a finished job never moves back: late progress is history only
        _apply_progress(job.stages[data.stage], data, event.time, received_at)
    elif isinstance(data, OcrCompleted | AsrCompleted):
        assert stage is not None
        first = not job.stages[stage].done
        _complete_stage(job.stages[stage], event.time, received_at, data.stats.processing_s)
        if isinstance(data, OcrCompleted) and first:
            out.segments = _apply_captions(job, data, captions)
    elif isinstance(data, CrosscheckCompleted):
        if job.terminal or job.stages[Stage.CROSSCHECK].done:
            # Findings and counts are the first outcome's: a late or second one is history, never a rewrite.
            out.timeline = _replace_summary(timeline, f"{timeline.summary} (not applied: the job had finished)")
            return out
        _complete_stage(job.stages[Stage.CROSSCHECK], event.time, received_at, None)
        out.findings = list(data.findings)
        counts: dict[str, int] = {}
        for finding in data.findings:
            counts[finding.kind.value] = counts.get(finding.kind.value, 0) + 1
        job.finding_counts = counts
        job.findings_total = len(data.findings)
        job.state = JobState.COMPLETED
        job.completed_at = event.time
    elif isinstance(data, StageFailed):
        record = job.stages[data.stage]
        record.last_event_at = received_at
        record.first_seen_at = record.first_seen_at or event.time
        if not record.done:
            record.state = StageState.FAILED
            record.completed_at = event.time
        if not job.terminal:
            _fail(job, data.reason, data.message, data.stage, event.time)

    if not job.terminal and job.state is JobState.ACCEPTED and not isinstance(data, JobRequested):
        job.state = JobState.RUNNING
    _recompute_timings(job)
    out.became_terminal = job.terminal and not was_terminal
    return out


def project_dead_letter(job: JobRecord, letter: DeadLetter, *, received_at: datetime) -> Projected:
    """A message about ``job`` was dead-lettered: nothing will process it any more, so the job fails."""
    message = _dead_letter_message(letter)
    was_terminal = job.terminal
    stage = _stage_of_type(letter.event_type)
    timeline = TimelineRow(
        event_id=f"dead-letter:{letter.fingerprint}",
        job_id=job.job_id,
        type=DEAD_LETTERED_TYPE,
        time=received_at,
        received_at=received_at,
        source=(letter.source_subscription or STATUS_SOURCE)[:500],
        stage=stage,
        summary=message[:1000],
    )
    job.updated_at = received_at
    if not job.terminal:
        _fail(job, FailureReason.DEAD_LETTERED, message, stage, received_at)
    return Projected(timeline=timeline, became_terminal=job.terminal and not was_terminal)


def silent_stages(job: JobRecord, *, now: datetime, deadline_s: float) -> list[Stage]:
    """The stages ``job`` is waiting for that have said nothing for longer than the deadline."""
    if job.terminal:
        return []
    silent: list[Stage] = []
    for stage in (Stage.OCR, Stage.ASR):
        record = job.stages[stage]
        last = record.last_event_at or job.first_seen_at
        if not record.done and (now - last).total_seconds() > deadline_s:
            silent.append(stage)
    ocr, asr, cross = (job.stages[s] for s in (Stage.OCR, Stage.ASR, Stage.CROSSCHECK))
    if not silent and ocr.state is StageState.COMPLETED and asr.state is StageState.COMPLETED and not cross.done:
        # The cross-check's clock starts when its second input arrived.
        inputs = [t for t in (ocr.last_event_at, asr.last_event_at) if t is not None]
        last = cross.last_event_at or (max(inputs) if inputs else job.first_seen_at)
        if (now - last).total_seconds() > deadline_s:
            silent.append(Stage.CROSSCHECK)
    return silent


def expire_job(job: JobRecord, *, now: datetime, deadline_s: float) -> Projected | None:
    """Fail ``job`` with ``result_missing`` if a stage it waits for has been silent past the deadline."""
    silent = silent_stages(job, now=now, deadline_s=deadline_s)
    if not silent:
        return None
    names = " and ".join(s.value for s in silent)
    noun = "result" if len(silent) == 1 else "results"
    message = f"{names} {noun} missing after {deadline_s:g} s"
    job.updated_at = now
    stage = silent[0] if len(silent) == 1 else None
    _fail(job, FailureReason.RESULT_MISSING, message, stage, now)
    timeline = TimelineRow(
        event_id=f"deadline:{job.job_id}",
        job_id=job.job_id,
        type=DEADLINE_PASSED_TYPE,
        time=now,
        received_at=now,
        source=STATUS_SOURCE,
        stage=stage,
        summary=message,
    )
    return Projected(timeline=timeline, became_terminal=True)


def parse_dead_letter(data: bytes, attributes: Mapping[str, str]) -> DeadLetter:
    """Read what we can from a dead-lettered message: our runtime's attributes or Pub/Sub's own."""
    attrs = dict(attributes)
    fingerprint = hashlib.sha256(data + b"\x00" + json.dumps(attrs, sort_keys=True).encode()).hexdigest()
    payload: dict[str, Any] = {}
    try:
        decoded = json.loads(data)
        if isinstance(decoded, dict):
            payload = decoded
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    job_id = attrs.get("ce-subject") or payload.get("job_id")
    tenant = payload.get("tenant")
    reason = attrs.get("captionqc-dead-letter-reason")
    message = attrs.get("captionqc-dead-letter-message")
    source = attrs.get("captionqc-dead-letter-source")
    if reason is None:
        # Forwarded by Pub/Sub's dead-letter policy: a decodable message that kept failing in some consumer.
        reason = "max_delivery_attempts"
        source = attrs.get("CloudPubSubDeadLetterSourceSubscription") or source
        count = attrs.get("CloudPubSubDeadLetterSourceDeliveryCount")
        message = f"delivery failed {count} times" if count else "delivery kept failing"
    return DeadLetter(
        fingerprint=fingerprint,
        job_id=job_id if isinstance(job_id, str) and _JOB_ID.match(job_id) else None,
        tenant=tenant if isinstance(tenant, str) and _TENANT.match(tenant) else None,
        event_id=(attrs.get("ce-id") or None),
        event_type=(attrs.get("ce-type") or None),
        reason=reason[:100],
        message=(message or "")[:2000],
        source_subscription=source,
        attributes=attrs,
    )


# -- helpers -----------------------------------------------------------------------------------------------------
def _apply_requested(job: JobRecord, event: CloudEvent[Any], data: JobRequested) -> None:
    job.requested = True
    job.tenant = data.tenant
    job.media_uri = data.media.uri
    job.language = data.language
    job.callback_url = data.callback_url
    job.requested_at = data.requested_at
    job.created_at = data.requested_at
    # The job's trace starts at the request: prefer its trace id over whatever event happened to come first.
    job.trace_id = event_trace_id(event) or job.trace_id


def _forget(job: JobRecord, tenant: str) -> None:
    """Start ``job`` again as ``tenant``'s: what earlier events of another tenant set on it was never the job's."""
    fresh = new_job(job.job_id, tenant, event_time=job.created_at, received_at=job.first_seen_at, trace_id=None)
    for f in fields(JobRecord):
        if f.name not in _KEPT_ON_RESET:
            setattr(job, f.name, getattr(fresh, f.name))


def _apply_progress(record: StageRecord, data: StageProgress, time: datetime, received_at: datetime) -> None:
    record.last_event_at = received_at
    record.first_seen_at = record.first_seen_at or time
    if record.done:
        return
    record.state = StageState.RUNNING
    record.progress = max(record.progress, data.progress)
    record.message = data.message[:500]


def _complete_stage(record: StageRecord, time: datetime, received_at: datetime, processing_s: float | None) -> None:
    record.last_event_at = received_at
    record.first_seen_at = record.first_seen_at or time
    if record.done:
        return
    record.state = StageState.COMPLETED
    record.progress = 1.0
    record.completed_at = time
    record.processing_s = processing_s


def _apply_captions(
    job: JobRecord, data: OcrCompleted, captions: FetchedCaptions | None
) -> list[CaptionSegment] | None:
    if data.segments is not None:
        job.captions_state, job.captions_note = CaptionsState.AVAILABLE, None
        return list(data.segments)
    if captions is not None and captions.segments is not None:
        job.captions_state, job.captions_note = CaptionsState.AVAILABLE, None
        return captions.segments
    job.captions_state = CaptionsState.UNAVAILABLE
    job.captions_note = ((captions.note if captions else None) or "claim-checked result was not fetched")[:500]
    return []


def _fail(job: JobRecord, reason: FailureReason, message: str, stage: Stage | None, time: datetime) -> None:
    job.state = JobState.FAILED
    job.failure_reason = reason
    job.failure_message = message
    job.failure_stage = stage
    job.completed_at = time


def _recompute_timings(job: JobRecord) -> None:
    # Recomputed on every event: a late job.requested supplies the start of the OCR and ASR clocks.
    for stage in (Stage.OCR, Stage.ASR):
        record = job.stages[stage]
        start = job.requested_at or record.first_seen_at
        if record.completed_at is not None and start is not None:
            record.seconds = max(0.0, (record.completed_at - start).total_seconds())
    cross, ocr, asr = job.stages[Stage.CROSSCHECK], job.stages[Stage.OCR], job.stages[Stage.ASR]
    if cross.completed_at is not None:
        inputs = [t for t in (ocr.completed_at, asr.completed_at) if t is not None]
        start = max(inputs) if len(inputs) == 2 else cross.first_seen_at
        if start is not None:
            cross.seconds = max(0.0, (cross.completed_at - start).total_seconds())


def _stage_of(event_type: EventType) -> Stage | None:
    prefix = event_type.value.split(".")[1]
    return Stage(prefix) if prefix in _STAGE_NAMES else None


def _stage_of_type(event_type: str | None) -> Stage | None:
    try:
        return _stage_of(EventType(event_type)) if event_type else None
    except ValueError:
        return None


def _replace_summary(row: TimelineRow, summary: str) -> TimelineRow:
    return TimelineRow(**{**row.__dict__, "summary": summary[:1000]})


def _summary(event: CloudEvent[Any]) -> str:
    """One line for the timeline. Never media text: counts, times, reasons."""
    data = event.data
    text: str
    if isinstance(data, JobRequested):
        callback = ", with callback" if data.callback_url else ""
        text = f"job requested: {data.media.uri[:300]} ({data.language}){callback}"
    elif isinstance(data, StageProgress):
        text = f"{data.stage.value} {data.progress:.0%}" + (f": {data.message[:200]}" if data.message else "")
    elif isinstance(data, OcrCompleted):
        what = f"{len(data.segments)} caption segments" if data.segments is not None else "captions (claim check)"
        text = f"ocr completed: {what}, {data.stats.processing_s:.1f} s by {data.engine.name} {data.engine.version}"
    elif isinstance(data, AsrCompleted):
        what = f"{len(data.words)} words" if data.words is not None else "words (claim check)"
        text = f"asr completed: {what}, {data.stats.processing_s:.1f} s by {data.engine.name} {data.engine.version}"
    elif isinstance(data, CrosscheckCompleted):
        counts: dict[str, int] = {}
        for finding in data.findings:
            counts[finding.kind.value] = counts.get(finding.kind.value, 0) + 1
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
        text = f"crosscheck completed: {len(data.findings)} findings" + (f" ({detail})" if detail else "")
    elif isinstance(data, StageFailed):
        text = f"{data.stage.value} failed ({data.reason.value}): {data.message[:500]}"
    else:  # pragma: no cover - every payload type is handled above
        text = event.type.value
    return text[:1000]


def _dead_letter_message(letter: DeadLetter) -> str:
    what = letter.event_type or "a message"
    where = f" on {letter.source_subscription.rsplit('/', 1)[-1]}" if letter.source_subscription else ""
    detail = f": {letter.message}" if letter.message else ""
    return f"{what} dead-lettered{where} ({letter.reason}){detail}"[:2000]
