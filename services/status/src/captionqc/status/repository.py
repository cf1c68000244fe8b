"""SQL of the status service. Every function takes the caller's session; none commits."""

from __future__ import annotations

import base64
import functools
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Row,
    String,
    Table,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from captionqc.schemas import CaptionSegment, CheckKind, FailureReason, Severity, Stage, TypoFinding
from captionqc.schemas.status_api import CaptionsState, JobState, StageState
from captionqc.status.projection import (
    JOB_ID,
    CallbackDelivery,
    DeadLetter,
    JobRecord,
    StageRecord,
    TimelineRow,
    bounded_id,
)
from captionqc.status.tables import (
    caption_segments,
    dead_letters,
    findings,
    inbox,
    jobs,
    timeline,
    webhook_deliveries,
)

CONSUMER = "status"
# Functions take the caller's session, or its connection (``await session.connection()``): the projector's hot
# path runs Core statements on the connection and skips the ORM session's per-statement bookkeeping.
Executor = AsyncSession | AsyncConnection
_OPEN_STATES = (JobState.ACCEPTED.value, JobState.RUNNING.value)
_DONE_STAGES = (StageState.COMPLETED.value, StageState.FAILED.value)
_STAGE_FIELDS = (
    "state",
    "progress",
    "message",
    "first_seen_at",
    "completed_at",
    "seconds",
    "processing_s",
    "last_event_at",
)


class InvalidCursor(ValueError):
    """A page cursor this service did not hand out."""


# -- job rows ↔ records ------------------------------------------------------------------------------------------
# Column names per stage, computed once: these conversions run for every job row of every batch, and building the
# names (or reading an enum's ``.value``) per cell cost more than the SQL around them.
_STAGE_COLUMNS = tuple((stage, tuple((f, f"{stage.value}_{f}") for f in _STAGE_FIELDS)) for stage in Stage)
_STAGE_STATE = {s.value: s for s in StageState}


def record_from_row(row: Row[Any] | Any) -> JobRecord:
    return record_from_values(dict(row._mapping))


def record_from_values(m: dict[str, Any]) -> JobRecord:
    """A record from a ``status.jobs`` row as a dict (kept as ``loaded_row`` to tell what changed)."""
    stages = {}
    for stage, names in _STAGE_COLUMNS:
        values = {f: m[column] for f, column in names}
        values["state"] = _STAGE_STATE[values["state"]]
        stages[stage] = StageRecord(**values)
    delivery = None
    if m.get("delivery_state") is not None:
        delivery = CallbackDelivery(
            state=m["delivery_state"],
            attempts=m["delivery_attempts"],
            last_status=m["delivery_last_status"],
            last_error=m["delivery_last_error"],
        )
    return JobRecord(
        job_id=m["job_id"],
        tenant=m["tenant"],
        state=JobState(m["state"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        first_seen_at=m["first_seen_at"],
        requested=m["requested"],
        media_uri=m["media_uri"],
        language=m["language"],
        callback_url=m["callback_url"],
        trace_id=m["trace_id"],
        requested_at=m["requested_at"],
        completed_at=m["completed_at"],
        failure_reason=FailureReason(m["failure_reason"]) if m["failure_reason"] else None,
        failure_message=m["failure_message"],
        failure_stage=Stage(m["failure_stage"]) if m["failure_stage"] else None,
        finding_counts=dict(m["finding_counts"] or {}),
        findings_total=m["findings_total"],
        captions_state=CaptionsState(m["captions_state"]),
        captions_note=m["captions_note"],
        stages=stages,
        delivery=delivery,
        loaded_row=m,
    )


def row_from_record(job: JobRecord) -> dict[str, Any]:
    # The enums are StrEnums: str() gives the stored value without the (slow) ``.value`` descriptor.
    row: dict[str, Any] = {
        "job_id": job.job_id,
        "tenant": job.tenant,
        "state": str(job.state),
        "requested": job.requested,
        "media_uri": job.media_uri,
        "language": job.language,
        "callback_url": job.callback_url,
        "trace_id": job.trace_id,
        "requested_at": job.requested_at,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "first_seen_at": job.first_seen_at,
        "completed_at": job.completed_at,
        "failure_reason": str(job.failure_reason) if job.failure_reason else None,
        "failure_message": job.failure_message,
        "failure_stage": str(job.failure_stage) if job.failure_stage else None,
        "finding_counts": job.finding_counts,
        "findings_total": job.findings_total,
        "captions_state": str(job.captions_state),
        "captions_note": job.captions_note,
    }
    stages = job.stages
    for stage, names in _STAGE_COLUMNS:
        record = stages[stage]
        for f, column in names:
            row[column] = getattr(record, f)
        row[names[0][1]] = str(record.state)
    return row


# -- projection writes -------------------------------------------------------------------------------------------
# The hot path sends each column as one array and lets PostgreSQL ``unnest`` them back into rows: one statement
# text whatever the batch size (so asyncpg prepares it once per connection), one round trip, and one parameter per
# column instead of one per cell for SQLAlchemy to process.
def _bind(table: Table, column: str) -> str:
    # Unlike the column's own name (which an INSERT or UPDATE reserves), unique across the tables of a statement.
    return f"{table.name}_{column}"


def _unnest(table: Table, columns: Sequence[str]) -> Any:
    arrays = [bindparam(_bind(table, c), type_=ARRAY(table.c[c].type)) for c in columns]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name="v")


def _bulk_insert(table: Table, columns: Sequence[str], conflict: Sequence[str]) -> Any:
    rows = select(_unnest(table, columns))
    return pg_insert(table).from_select(columns, rows).on_conflict_do_nothing(index_elements=conflict)


def _arrays(table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    """The parameters of ``_unnest(table, columns)`` for ``rows`` (tuples in ``columns`` order)."""
    if not rows:
        return {_bind(table, c): [] for c in columns}
    return {_bind(table, c): list(values) for c, values in zip(columns, zip(*rows, strict=True), strict=True)}


_JOB_COLUMNS = tuple(c.name for c in jobs.c)
# PostgreSQL's row version: the id of the transaction that wrote the row (a lock does not change it).
_XMIN = cast(cast(literal_column("xmin"), String), BigInteger).label("xmin")  # xid has no cast to bigint


@functools.lru_cache(maxsize=128)
def _save_jobs(columns: tuple[str, ...]) -> Any:
    # One statement per set of changed columns; a batch of like events (progress ticks) always changes the same
    # few, so there are only a handful of shapes, each compiled and prepared once.
    rows = _unnest(jobs, ("job_id", *columns))
    return (
        update(jobs)
        .where(jobs.c.job_id == rows.c.job_id)
        .values({c: rows.c[c] for c in columns})
        .returning(jobs.c.job_id, _XMIN)
    )


_INBOX_ROWS = (
    func.unnest(
        bindparam("sources", type_=ARRAY(inbox.c.source.type)),
        bindparam("event_ids", type_=ARRAY(inbox.c.event_id.type)),
    )
    .table_valued("source", "event_id")
    .render_derived(name="v")
)
# An event is (source, id), as CloudEvents defines it: one producer reusing another's id cannot silence its event.
_CLAIM = (
    pg_insert(inbox)
    .from_select(
        ["consumer", "source", "event_id"], select(literal(CONSUMER), _INBOX_ROWS.c.source, _INBOX_ROWS.c.event_id)
    )
    .on_conflict_do_nothing(index_elements=["consumer", "source", "event_id"])
    .returning(inbox.c.source, inbox.c.event_id)
)
_LOCKED_COLUMNS = (*_JOB_COLUMNS, "xmin")
_JOB_IDS = bindparam("job_ids", type_=ARRAY(jobs.c.job_id.type))
_LOCK_VERSIONS = (
    select(jobs.c.job_id, _XMIN).where(jobs.c.job_id == any_(_JOB_IDS)).order_by(jobs.c.job_id).with_for_update()
)
_LOCK_JOBS = select(jobs, _XMIN).where(jobs.c.job_id == any_(_JOB_IDS)).order_by(jobs.c.job_id).with_for_update()
_CLAIMED = _CLAIM.cte("claimed")
_LOCKED = _LOCK_VERSIONS.cte("locked")
_CLAIM_AND_LOCK = union_all(
    select(
        literal("event").label("kind"),
        _CLAIMED.c.source.label("source"),
        _CLAIMED.c.event_id.label("key"),
        cast(null(), BigInteger).label("version"),
    ),
    select(literal("job"), cast(null(), String), _LOCKED.c.job_id, _LOCKED.c.xmin),
)
_CREATE_JOBS = _bulk_insert(jobs, _JOB_COLUMNS, ["job_id"]).returning(jobs.c.job_id, _XMIN)
_TIMELINE_COLUMNS = ("event_id", "job_id", "type", "time", "received_at", "source", "stage", "summary")
_ADD_TIMELINE = _bulk_insert(timeline, _TIMELINE_COLUMNS, ["source", "event_id"])
_FINDING_COLUMNS = (
    "job_id",
    "finding_id",
    "position",
    "start_s",
    "end_s",
    "caption_text",
    "word",
    "suggestion",
    "kind",
    "confidence",
    "severity",
    "evidence",
)
_ADD_FINDINGS = _bulk_insert(findings, _FINDING_COLUMNS, ["job_id", "finding_id"])


@functools.lru_cache(maxsize=128)
def _save_projection(columns: tuple[str, ...]) -> Any:
    # The timeline and findings inserts ride along as data-modifying CTEs: other tables, so the order in which
    # PostgreSQL runs the three does not matter (the findings' foreign key is checked at the end of the statement).
    added_timeline = _ADD_TIMELINE.cte("added_timeline")
    added_findings = _ADD_FINDINGS.cte("added_findings")
    return _save_jobs(columns).add_cte(added_timeline).add_cte(added_findings)


_CAPTION_COLUMNS = ("job_id", "position", "start_s", "end_s", "text", "confidence")
_ADD_CAPTIONS = _bulk_insert(caption_segments, _CAPTION_COLUMNS, ["job_id", "position"])
_DELETE_CAPTIONS = delete(caption_segments).where(
    caption_segments.c.job_id == any_(bindparam("job_ids", type_=ARRAY(caption_segments.c.job_id.type)))
)


class JobCache:
    """The job rows this process last wrote, each with its row version (``xmin``), so that locking a job it has
    seen reads only the row's version, not the row: most events are for jobs in flight, whose previous event this
    process projected. A row another writer (replica, sweeper, dead letter) changed since has another version and
    is read again, so the cache is never trusted beyond what the database confirms under the lock.

    A record is taken out while a batch works on it and put back only once that batch has committed: a batch that
    fails leaves nothing of its changes here. Bounded by count (least recently used goes) and by age, so a version
    cannot come round again (xid wrap-around) while an entry holds it.
    """

    def __init__(self, max_jobs: int = 10_000, max_age_s: float = 600.0) -> None:
        self._max_jobs = max_jobs
        self._max_age_s = max_age_s
        self._entries: OrderedDict[str, tuple[int, float, JobRecord]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, job_id: str, version: int) -> JobRecord | None:
        """The cached record of ``job_id``, removed from the cache, if the row is still at ``version``."""
        entry = self._entries.pop(job_id, None)
        if entry is None:
            return None
        cached_version, stored_at, record = entry
        if cached_version != version or time.monotonic() - stored_at > self._max_age_s:
            return None
        return record

    def store(self, records: Iterable[JobRecord]) -> None:
        """Keep committed records (their ``loaded_row`` is what was written, with its version)."""
        now = time.monotonic()
        for record in records:
            version = record.loaded_row.get("xmin") if record.loaded_row else None
            if isinstance(version, int):
                self._entries[record.job_id] = (version, now, record)
                self._entries.move_to_end(record.job_id)
        while len(self._entries) > self._max_jobs:
            self._entries.popitem(last=False)


EventKey = tuple[str, str]  # (source, id), each cut to its inbox column by `event_key`


def event_key(source: str, event_id: str) -> EventKey:
    """The inbox key of an event: its source and id, a digest in place of either when it is too long to store."""
    return bounded_id(source, 500), bounded_id(event_id, 200)


async def claim_events_and_lock_jobs(
    session: Executor, events: Iterable[EventKey], job_ids: Iterable[str]
) -> tuple[set[EventKey], dict[str, int]]:
    """One round trip before projecting: record the events (``event_key``) in the inbox, and lock the rows of
    ``job_ids`` that exist (in job id order, so batches cannot deadlock). Returns the events not seen before (the
    rest are redeliveries) and the version of each locked row."""
    # Sorted, so two replicas claiming overlapping batches take the inbox keys in the same order.
    keys = sorted(set(events))
    params = {
        "sources": [source for source, _ in keys],
        "event_ids": [event_id for _, event_id in keys],
        "job_ids": sorted(set(job_ids)),
    }
    claimed: set[EventKey] = set()
    versions: dict[str, int] = {}
    for kind, source, key, version in await session.execute(_CLAIM_AND_LOCK, params):
        if kind == "event":
            claimed.add((source, key))
        else:
            versions[key] = version
    return claimed, versions


async def load_locked_jobs(
    session: Executor,
    job_ids: Iterable[str],
    versions: Mapping[str, int],
    new_job: Callable[[str], JobRecord],
    cache: JobCache | None = None,
) -> dict[str, JobRecord]:
    """The records of ``job_ids``: rows locked at ``versions`` (taken from ``cache`` when it holds that version,
    else read), the others created now from ``new_job``."""
    wanted = sorted(set(job_ids))
    records: dict[str, JobRecord] = {}
    stale: list[str] = []
    for job_id in wanted:
        version = versions.get(job_id)
        if version is not None:
            record = cache.take(job_id, version) if cache is not None else None
            if record is None:
                stale.append(job_id)
            else:
                records[job_id] = record
    if stale:
        records |= await _select_for_update(session, stale)  # locked already: this only reads them
    missing = [j for j in wanted if j not in records]
    if missing:
        records |= await _create_jobs(session, missing, new_job)
    return records


async def lock_jobs(
    session: Executor, job_ids: Iterable[str], new_job: Callable[[str], JobRecord]
) -> dict[str, JobRecord]:
    """Lock the rows of ``job_ids`` (in job id order, so batches cannot deadlock), creating the missing ones from
    ``new_job``."""
    wanted = sorted(set(job_ids))
    locked = await _select_for_update(session, wanted)
    missing = [j for j in wanted if j not in locked]
    if missing:
        locked |= await _create_jobs(session, missing, new_job)
    return locked


async def _create_jobs(
    session: Executor, job_ids: Sequence[str], new_job: Callable[[str], JobRecord]
) -> dict[str, JobRecord]:
    created = {j: new_job(j) for j in job_ids}
    rows = {j: row_from_record(r) for j, r in created.items()}
    params = {_bind(jobs, c): [row[c] for row in rows.values()] for c in _JOB_COLUMNS}
    out: dict[str, JobRecord] = {}
    for job_id, version in await session.execute(_CREATE_JOBS, params):
        rows[job_id]["xmin"] = version
        created[job_id].loaded_row = rows[job_id]
        out[job_id] = created[job_id]
    raced = [j for j in job_ids if j not in out]
    if raced:  # another replica created these since we looked: lock them as they are now
        out |= await _select_for_update(session, raced)
    return out


async def _select_for_update(session: Executor, job_ids: Sequence[str]) -> dict[str, JobRecord]:
    result = await session.execute(_LOCK_JOBS, {"job_ids": list(job_ids)})
    records = (record_from_values(dict(zip(_LOCKED_COLUMNS, r, strict=True))) for r in result)
    return {r.job_id: r for r in records}


async def lock_job(session: Executor, job_id: str) -> JobRecord | None:
    row = (await session.execute(select(jobs).where(jobs.c.job_id == job_id).with_for_update())).first()
    return record_from_row(row) if row else None


async def save_jobs(session: Executor, records: Iterable[JobRecord]) -> None:
    """Write back what the projector changed, in one statement: the columns any of the rows changed. The rows are
    locked, so a column that one row did not change is rewritten with the value it was read with. Afterwards each
    written record's ``loaded_row`` is what it now is in the database."""
    columns, written = _changed_jobs(records)
    if written:
        _mark_written(await session.execute(_save_jobs(columns), _job_params(columns, written)), written)


async def save_projection(
    session: Executor,
    records: Iterable[JobRecord],
    rows: Sequence[TimelineRow],
    findings_of_jobs: Sequence[tuple[str, Sequence[TypoFinding]]],
) -> None:
    """What a batch projected, in one round trip: ``save_jobs``, ``add_timeline`` and ``add_findings``."""
    columns, written = _changed_jobs(records)
    if not written:
        await add_timeline(session, rows)
        await add_findings(session, findings_of_jobs)
        return
    params = _job_params(columns, written) | _timeline_params(rows) | _findings_params(findings_of_jobs)
    _mark_written(await session.execute(_save_projection(columns), params), written)


_Written = dict[str, tuple[JobRecord, dict[str, Any]]]


def _changed_jobs(records: Iterable[JobRecord]) -> tuple[tuple[str, ...], _Written]:
    written: _Written = {}
    changed: set[str] = set()
    for record in sorted(records, key=lambda r: r.job_id):
        row = row_from_record(record)
        before = record.loaded_row
        diff = [c for c in _JOB_COLUMNS[1:] if before is None or before[c] != row[c]]
        if diff:
            changed.update(diff)
            written[record.job_id] = (record, row)
    return tuple(c for c in _JOB_COLUMNS[1:] if c in changed), written


def _job_params(columns: tuple[str, ...], written: _Written) -> dict[str, list[Any]]:
    return {_bind(jobs, c): [row[c] for _, row in written.values()] for c in ("job_id", *columns)}


def _mark_written(result: Any, written: _Written) -> None:
    for job_id, version in result:
        record, row = written[job_id]
        row["xmin"] = version
        record.loaded_row = row


def _timeline_params(rows: Sequence[TimelineRow]) -> dict[str, list[Any]]:
    values = [
        (r.event_id, r.job_id, r.type, r.time, r.received_at, r.source, str(r.stage) if r.stage else None, r.summary)
        for r in rows
    ]
    return _arrays(timeline, _TIMELINE_COLUMNS, values)


def _findings_params(items: Sequence[tuple[str, Sequence[TypoFinding]]]) -> dict[str, list[Any]]:
    values = [
        (
            job_id,
            f.id,
            i,
            f.start_s,
            f.end_s,
            f.caption_text,
            f.word,
            f.suggestion,
            str(f.kind),
            f.confidence,
            str(f.severity),
            f.evidence,
        )
        for job_id, found in items
        for i, f in enumerate(found)
    ]
    return _arrays(findings, _FINDING_COLUMNS, values)


async def forget_job_history(session: Executor, job_ids: Sequence[str]) -> None:
    """Delete the timeline and findings of ``job_ids`` (their events turned out to be another tenant's)."""
    await session.execute(delete(timeline).where(timeline.c.job_id.in_(job_ids)))
    await session.execute(delete(findings).where(findings.c.job_id.in_(job_ids)))


async def add_timeline(session: Executor, rows: Sequence[TimelineRow]) -> None:
    if rows:
        await session.execute(_ADD_TIMELINE, _timeline_params(rows))


async def add_findings(session: Executor, items: Sequence[tuple[str, Sequence[TypoFinding]]]) -> None:
    """Findings of several jobs: (job id, findings in report order)."""
    if any(found for _, found in items):
        await session.execute(_ADD_FINDINGS, _findings_params(items))


async def replace_captions(session: Executor, captions: Mapping[str, Sequence[CaptionSegment]]) -> None:
    """Replace the stored captions of several jobs (job id → segments)."""
    if not captions:
        return
    await session.execute(_DELETE_CAPTIONS, {"job_ids": sorted(captions)})
    values = [
        (job_id, i, seg.start_s, seg.end_s, seg.text, seg.confidence)
        for job_id, segments in captions.items()
        for i, seg in enumerate(segments)
    ]
    if values:
        await session.execute(_ADD_CAPTIONS, _arrays(caption_segments, _CAPTION_COLUMNS, values))


async def record_dead_letter(
    session: Executor, letter: DeadLetter, received_at: datetime, *, orphan_reason: str | None
) -> bool:
    """Keep the dead letter (already cleaned for storage); False if this exact message was already recorded."""
    stmt = (
        pg_insert(dead_letters)
        .values(
            fingerprint=letter.fingerprint,
            job_id=letter.job_id,
            event_id=letter.event_id,
            event_type=letter.event_type,
            reason=letter.reason,
            message=letter.message,
            source_subscription=letter.source_subscription,
            attributes=letter.attributes,
            received_at=received_at,
            orphan_reason=orphan_reason,
            tenant=letter.tenant,
            flags=list(letter.flags),
            data_size=letter.data_size,
        )
        .on_conflict_do_nothing(index_elements=["fingerprint"])
        .returning(dead_letters.c.fingerprint)
    )
    return (await session.execute(stmt)).first() is not None


async def queue_webhooks(session: Executor, records: Iterable[JobRecord], now: datetime) -> int:
    """One delivery row per finished job with a callback; the primary key makes a second one impossible."""
    values = [
        {"job_id": r.job_id, "tenant": r.tenant, "url": r.callback_url, "created_at": now}
        for r in records
        if r.terminal and r.callback_url
    ]
    if not values:
        return 0
    result = await session.execute(
        pg_insert(webhook_deliveries)
        .values(values)
        .on_conflict_do_nothing(index_elements=["job_id"])
        .returning(webhook_deliveries.c.job_id)
    )
    return len(result.all())


# -- deadline sweeper ------------------------------------------------------------------------------------------
async def lock_overdue_jobs(session: Executor, cutoff: datetime, limit: int) -> list[JobRecord]:
    """Open jobs with a stage silent since before ``cutoff``; rows another replica holds are skipped."""

    def waiting(stage: str) -> Any:
        c = jobs.c
        return and_(
            c[f"{stage}_state"].not_in(_DONE_STAGES),
            func.coalesce(c[f"{stage}_last_event_at"], c.first_seen_at) < cutoff,
        )

    c = jobs.c
    crosscheck_waiting = and_(
        c.ocr_state == StageState.COMPLETED.value,
        c.asr_state == StageState.COMPLETED.value,
        c.crosscheck_state.not_in(_DONE_STAGES),
        func.coalesce(c.crosscheck_last_event_at, func.greatest(c.ocr_last_event_at, c.asr_last_event_at)) < cutoff,
    )
    stmt = (
        select(jobs)
        .where(c.state.in_(_OPEN_STATES), or_(waiting("ocr"), waiting("asr"), crosscheck_waiting))
        .order_by(c.first_seen_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [record_from_row(r) for r in await session.execute(stmt)]


# -- webhook deliveries ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    job_id: str
    tenant: str
    url: str
    attempts: int


async def lease_deliveries(session: Executor, now: datetime, lease: timedelta, limit: int) -> list[Delivery]:
    """Take pending deliveries nobody holds (or whose holder's lease ran out) for ``lease``."""
    d = webhook_deliveries.c
    picked = (
        select(d.job_id)
        .where(d.state == "pending", or_(d.leased_until.is_(None), d.leased_until < now))
        .order_by(d.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(
        update(webhook_deliveries)
        .where(d.job_id.in_(picked))
        .values(leased_until=now + lease)
        .returning(d.job_id, d.tenant, d.url, d.attempts)
    )
    return [Delivery(r.job_id, r.tenant, r.url, r.attempts) for r in result]


async def finish_delivery(
    session: Executor, job_id: str, *, state: str, attempts: int, last_status: int | None, last_error: str | None,
    now: datetime,
) -> None:  # fmt: skip
    await session.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.job_id == job_id)
        .values(
            state=state,
            attempts=attempts,
            last_status=last_status,
            last_error=last_error[:1000] if last_error else None,
            leased_until=None,
            delivered_at=now if state == "delivered" else None,
        )
    )


async def delivery_state(session: Executor, job_id: str) -> Row[Any] | None:
    return (await session.execute(select(webhook_deliveries).where(webhook_deliveries.c.job_id == job_id))).first()


# -- queries -----------------------------------------------------------------------------------------------------
# A job as the API shows it: its row and what the webhook sender recorded for it.
_JOB_VIEW = select(
    jobs,
    webhook_deliveries.c.state.label("delivery_state"),
    webhook_deliveries.c.attempts.label("delivery_attempts"),
    webhook_deliveries.c.last_status.label("delivery_last_status"),
    webhook_deliveries.c.last_error.label("delivery_last_error"),
).select_from(jobs.outerjoin(webhook_deliveries, webhook_deliveries.c.job_id == jobs.c.job_id))


async def get_job(session: Executor, tenant: str, job_id: str) -> JobRecord | None:
    row = (await session.execute(_JOB_VIEW.where(jobs.c.job_id == job_id, jobs.c.tenant == tenant))).first()
    return record_from_row(row) if row else None


async def get_job_any_tenant(session: Executor, job_id: str) -> JobRecord | None:
    row = (await session.execute(select(jobs).where(jobs.c.job_id == job_id))).first()
    return record_from_row(row) if row else None


def encode_cursor(created_at: datetime, job_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,512}$")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor of `encode_cursor` holds; `InvalidCursor` for anything else (nothing of it reaches
    the database unchecked: a NUL there was a 500)."""
    if not _CURSOR.match(cursor):
        raise InvalidCursor("the cursor is not one this API returned")
    try:
        created, job_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position = datetime.fromisoformat(created)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("the cursor is not one this API returned") from exc
    if position.tzinfo is None or not isinstance(job_id, str) or not JOB_ID.match(job_id):
        raise InvalidCursor("the cursor is not one this API returned")
    return position, job_id


async def list_jobs(
    session: Executor,
    tenant: str,
    *,
    states: Sequence[JobState],
    created_after: datetime | None,
    created_before: datetime | None,
    cursor: tuple[datetime, str] | None,
    limit: int,
) -> tuple[list[JobRecord], tuple[datetime, str] | None]:
    """A tenant's jobs newest first (keyset pagination on created_at, job_id); the next cursor if there is more."""
    c = jobs.c
    stmt = _JOB_VIEW.where(c.tenant == tenant)
    if states:
        stmt = stmt.where(c.state.in_([s.value for s in states]))
    if created_after is not None:
        stmt = stmt.where(c.created_at >= created_after)
    if created_before is not None:
        stmt = stmt.where(c.created_at < created_before)
    if cursor is not None:
        stmt = stmt.where(tuple_(c.created_at, c.job_id) < tuple_(literal(cursor[0]), literal(cursor[1])))
    stmt = stmt.order_by(c.created_at.desc(), c.job_id.desc()).limit(limit + 1)
    records = [record_from_row(r) for r in await session.execute(stmt)]
    if len(records) > limit:
        last = records[limit - 1]
        return records[:limit], (last.created_at, last.job_id)
    return records, None


async def job_findings(session: Executor, job_id: str) -> list[TypoFinding]:
    rows = await session.execute(select(findings).where(findings.c.job_id == job_id).order_by(findings.c.position))
    return [
        TypoFinding(
            id=r.finding_id,
            start_s=r.start_s,
            end_s=r.end_s,
            caption_text=r.caption_text,
            word=r.word,
            suggestion=r.suggestion,
            kind=CheckKind(r.kind),
            confidence=r.confidence,
            severity=Severity(r.severity),
            evidence=dict(r.evidence or {}),
        )
        for r in rows
    ]


async def job_captions(session: Executor, job_id: str) -> list[CaptionSegment]:
    rows = await session.execute(
        select(caption_segments).where(caption_segments.c.job_id == job_id).order_by(caption_segments.c.position)
    )
    return [CaptionSegment(start_s=r.start_s, end_s=r.end_s, text=r.text, confidence=r.confidence) for r in rows]


async def job_timeline(session: Executor, job_id: str) -> list[TimelineRow]:
    rows = await session.execute(
        select(timeline).where(timeline.c.job_id == job_id).order_by(timeline.c.time, timeline.c.seq)
    )
    return [
        TimelineRow(
            event_id=r.event_id,
            job_id=r.job_id,
            type=r.type,
            time=r.time,
            received_at=r.received_at,
            source=r.source,
            stage=Stage(r.stage) if r.stage else None,
            summary=r.summary,
        )
        for r in rows
    ]
