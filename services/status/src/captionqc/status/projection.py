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

from captionqc.runtime.consumer import (
    DEAD_LETTER_MESSAGE,
    DEAD_LETTER_REASON,
    DEAD_LETTER_SOURCE,
    DEAD_LETTER_TRUNCATED,
)
from captionqc.runtime.tracing import trace_id_from_traceparent
from captionqc.schemas import (
    TOPOLOGY,
    AsrCompleted,
    CaptionSegment,
    CloudEvent,
    CrosscheckCompleted,
    EventDecodeError,
    EventType,
    FailureReason,
    JobRequested,
    OcrCompleted,
    Stage,
    StageFailed,
    StageProgress,
    TopicName,
    TypoFinding,
    from_pubsub,
)
from captionqc.schemas.reasons import Refusal
from captionqc.schemas.status_api import CaptionsState, JobState, StageState
from captionqc.schemas.topology import accepted_types

# A job id as the events carry it (`captionqc.schemas` JobId): a UUID in lower case.
JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DONE = (StageState.COMPLETED, StageState.FAILED)
_STAGE_NAMES = frozenset(s.value for s in Stage)
_TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED})
# What a job keeps when its ``job.requested`` shows that earlier events were another tenant's.
_KEPT_ON_RESET = frozenset({"job_id", "created_at", "updated_at", "first_seen_at", "loaded_row", "delivery"})

# Pub/Sub's dead-letter policy names the subscription a message kept failing in.
PUBSUB_DEAD_LETTER_SOURCE = "CloudPubSubDeadLetterSourceSubscription"
# Attribute names that may hold credentials: never stored (an intake message carries its bearer token).
_SECRET_NAME = re.compile(
    r"authori[sz]ation|token|secret|passw(or)?d|credential|cookie|api[-_]?key|private[-_]?key|signature|session",
    re.IGNORECASE,
)
# Characters PostgreSQL cannot store (NUL) or that no attribute should carry: C0/C1 controls, lone surrogates.
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_MAX_ATTRIBUTES = 100
_MAX_ATTRIBUTE_NAME = 256
_MAX_ATTRIBUTE_VALUE = 1024

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


@dataclass(frozen=True)
class CallbackDelivery:
    """What the webhook sender recorded for a job (read with the job for its view; the projector never writes it)."""

    state: str
    attempts: int
    last_status: int | None
    last_error: str | None


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
    # Read with the job for the API (None: no delivery row yet, or not read); not a column of ``jobs``.
    delivery: CallbackDelivery | None = field(default=None, compare=False)
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
    """A message from the dead-letter topic, as far as it could be read, and cleaned for storage.

    Everything here is what the message *claims*: only `refusal` being None says it may be held against a job.
    """

    fingerprint: str
    # The job id it names (the event's, else ``ce-subject``, else the payload's ``job_id``), if it is a job id.
    job_id: str | None
    # The decoded event's tenant; None when the message does not decode.
    tenant: str | None
    event_id: str | None
    event_type: str | None
    # Why it was dead-lettered: the runtime's refusal, or ``max_delivery_attempts`` (Pub/Sub's dead-letter policy).
    reason: str
    message: str
    source_subscription: str | None
    # The attributes as stored: control characters escaped, long ones cut, secret-looking ones dropped.
    attributes: dict[str, str]
    # Why this message can fail no job whatever the job (None: it may fail the job it names, if that job is the
    # event's tenant's): undecodable, oversized, from outside (intake), or a type its subscription never carries.
    refusal: Refusal | None = None
    # What cleaning it took (``control_characters``, ``attributes_truncated``, ``secret_attributes_dropped``,
    # ``non_utf8_data``, ``truncated_upstream``).
    flags: tuple[str, ...] = ()
    data_size: int = 0
    event: CloudEvent[Any] | None = field(default=None, repr=False, compare=False)


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
        source=bounded_id(event.source, 500),
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
    """One of ``job``'s own events was dead-lettered (the service checked that it is: ``letter.refusal`` is None
    and the event's tenant is the job's): nothing will process it any more, so the job fails."""
    message = _dead_letter_message(letter)
    was_terminal = job.terminal
    stage = _stage_of(letter.event.type) if letter.event is not None else None
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
    """Read a dead-lettered message: who forwarded it and why, what it claims, and whether it may fail a job.

    Never raises: whatever arrives on the dead-letter subscription must be recorded and acked (the subscription has
    no dead-letter policy of its own, so a message its handler cannot take would be redelivered forever).
    """
    raw = dict(attributes)
    fingerprint = hashlib.sha256(data + b"\x00" + json.dumps(raw, sort_keys=True).encode()).hexdigest()
    flags: list[str] = []
    if DEAD_LETTER_REASON in raw:
        # Forwarded by our consumer runtime, which refused the message; it writes these attributes last.
        reason = raw[DEAD_LETTER_REASON]
        message = raw.get(DEAD_LETTER_MESSAGE, "")
        source = raw.get(DEAD_LETTER_SOURCE)
    else:
        # Forwarded by Pub/Sub's dead-letter policy: a message that kept failing in some consumer. Pub/Sub names
        # the subscription (its id; a full path is read the same way).
        reason = "max_delivery_attempts"
        source = raw.get(PUBSUB_DEAD_LETTER_SOURCE)
        count = raw.get("CloudPubSubDeadLetterSourceDeliveryCount")
        message = f"delivery failed {count} times" if count else "delivery kept failing"
    event: CloudEvent[Any] | None = None
    refusal: Refusal | None = None
    if DEAD_LETTER_TRUNCATED in raw:
        flags.append("truncated_upstream")
        refusal = Refusal.MESSAGE_TOO_LARGE
    else:
        try:
            event = from_pubsub(data, raw)
        except EventDecodeError as exc:
            refusal = exc.reason
        except Exception:  # anything a hostile message makes the decoder raise is a refusal, never a redelivery
            refusal = Refusal.MALFORMED_ENVELOPE
    if event is not None:
        if DEAD_LETTER_REASON in raw and PUBSUB_DEAD_LETTER_SOURCE in raw:
            # Our runtime forwards only what it received on its own subscriptions, and what Pub/Sub's policy
            # forwards only status reads: a genuine dead letter never carries both. One was written by the
            # message's publisher (an intake message refused by the gateway could name status-jobs).
            flags.append("conflicting_sources")
            refusal = Refusal.UNTRUSTED_SOURCE
        else:
            refusal = _source_refusal(event, source)
    try:
        data.decode()
    except UnicodeDecodeError:
        flags.append("non_utf8_data")
    stored, attribute_flags = _storable_attributes(raw)
    flags += attribute_flags
    clean = _Cleaner(flags)
    return DeadLetter(
        fingerprint=fingerprint,
        job_id=event.data.job_id if event is not None else _claimed_job_id(data, raw),
        tenant=event.data.tenant if event is not None else None,
        event_id=clean(event.id if event is not None else raw.get("ce-id"), 200),
        event_type=clean(event.type.value if event is not None else raw.get("ce-type"), 200),
        reason=clean(reason, 100) or "unknown",
        message=clean(message, 2000) or "",
        source_subscription=clean(source, 500),
        attributes=stored,
        refusal=refusal,
        flags=tuple(dict.fromkeys(flags)),
        data_size=len(data),
        event=event,
    )


def _source_refusal(event: CloudEvent[Any], source: str | None) -> Refusal | None:
    """Why a well-formed event, dead-lettered from ``source``, still proves nothing about its job (None: it may)."""
    name = source.rsplit("/", 1)[-1] if source else ""
    try:
        topic = TOPOLOGY.subscription(name).topic
    except KeyError:
        return Refusal.UNTRUSTED_SOURCE  # no subscription of ours: anyone could have written the attribute
    if topic == TopicName.INTAKE:
        # Intake messages come from outside: their tenant and job id are claims the gateway refused or never got
        # to check, so they fail nothing.
        return Refusal.UNTRUSTED_SOURCE
    if event.type not in accepted_types(name):
        return Refusal.UNEXPECTED_TYPE
    return None


def _claimed_job_id(data: bytes, attributes: Mapping[str, str]) -> str | None:
    candidate: Any = attributes.get("ce-subject")
    if not candidate:
        try:
            payload = json.loads(data)
        except (UnicodeDecodeError, ValueError, RecursionError):
            payload = None
        candidate = payload.get("job_id") if isinstance(payload, dict) else None
    return candidate if isinstance(candidate, str) and JOB_ID.match(candidate) else None


class _Cleaner:
    """Makes text storable: control characters (PostgreSQL stores no NUL) escaped, cut to a column's length.
    Records in ``flags`` what it had to do (``truncated`` names the flag for a cut)."""

    def __init__(self, flags: list[str], truncated: str = "fields_truncated") -> None:
        self._flags = flags
        self._truncated = truncated

    def __call__(self, text: str | None, limit: int) -> str | None:
        if text is None:
            return None
        escaped = _UNSTORABLE.sub(_escape_char, text)
        if escaped != text:
            self._flags.append("control_characters")
        if len(escaped) > limit:
            self._flags.append(self._truncated)
        return escaped[:limit]


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _storable_attributes(attributes: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The attributes to keep: no secrets (a bearer token must not outlive the message), no control characters,
    at most Pub/Sub's own limits (100 attributes, 256-byte names, 1024-byte values)."""
    flags: list[str] = []
    clean = _Cleaner(flags, truncated="attributes_truncated")
    stored: dict[str, str] = {}
    for key, value in sorted(attributes.items()):
        if _SECRET_NAME.search(key):
            flags.append("secret_attributes_dropped")
            continue
        if len(stored) == _MAX_ATTRIBUTES:
            flags.append("attributes_truncated")
            break
        stored[clean(key, _MAX_ATTRIBUTE_NAME) or ""] = clean(value, _MAX_ATTRIBUTE_VALUE) or ""
    return stored, flags


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
