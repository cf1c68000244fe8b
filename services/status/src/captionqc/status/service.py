"""The status service layer: project events into the read model, sweep deadlines, answer queries.

Each public coroutine is one unit of work (one transaction). Events are projected in batches: the job rows of a
batch are locked once, the projector runs over them in arrival order, and everything is written back with a
handful of statements — so a burst of progress ticks costs a few round trips, not a few per event: the inbox
claim and the row locks go in one, the job rows, timeline and findings come back in another. A job row this process
wrote last is not read again while its version (``xmin``, read under the lock) says nobody else changed it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DataError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionqc.runtime.db import unit_of_work
from captionqc.schemas import CaptionSegment, CloudEvent, TypoFinding
from captionqc.schemas.reasons import Refusal
from captionqc.schemas.status_api import JobState
from captionqc.status import repository as repo
from captionqc.status.projection import (
    DeadLetter,
    FetchedCaptions,
    JobRecord,
    TimelineRow,
    expire_job,
    new_job_for_event,
    project_dead_letter,
    project_event,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """An event to project, with the captions fetched for it when it is a claim-checked ``ocr.completed``."""

    event: CloudEvent[Any]
    captions: FetchedCaptions | None = None


class JobChanges:
    """In-process notification that jobs changed, so a stream wakes at once instead of at its next poll.

    Other replicas' changes are not seen here; streams poll the database as well.
    """

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[job_id]

    def notify(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            for event in self._waiters.get(job_id, ()):
                event.set()


class StreamSlots:
    """The ``/stream`` connections each tenant holds open in this process, against its ``max_streams``.

    Counted in memory, per serving process (one per replica), not across replicas: the cap protects what a stream
    costs, a held connection and a database poll every ``stream_poll_interval_s`` on the process that serves it,
    and that process's own connection pool is what a flood of streams would exhaust. Across the service a tenant
    holds at most ``max_streams`` x processes (bounded by Cloud Run's ``max_instances``), each for at most
    ``stream_max_s``. Counting in the database would need a row per stream with a lease renewed while it lives
    (a replica that dies holds its slots until the lease runs out): a write per stream per renewal, for a bound the
    per-process count already gives.
    """

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def open(self, tenant: str) -> int:
        return self._open.get(tenant, 0)

    def take(self, tenant: str, limit: int) -> StreamSlot | None:
        """A slot for one more stream of ``tenant``, or None when it already holds ``limit``."""
        if self.open(tenant) >= limit:
            return None
        self._open[tenant] = self.open(tenant) + 1
        return StreamSlot(self, tenant)

    def _release(self, tenant: str) -> None:
        left = self.open(tenant) - 1
        if left > 0:
            self._open[tenant] = left
        else:
            self._open.pop(tenant, None)


class StreamSlot:
    """One open stream's place in `StreamSlots`; `release` may be called any number of times."""

    def __init__(self, slots: StreamSlots, tenant: str) -> None:
        self._slots = slots
        self._tenant = tenant
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._slots._release(self._tenant)


def _now() -> datetime:
    return datetime.now(UTC)


class StatusService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        changes: JobChanges | None = None,
        on_webhook_queued: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.sessions = sessions
        self.changes = changes or JobChanges()
        self._on_webhook_queued = on_webhook_queued
        self._clock = clock
        # The rows of jobs this process projected last, reused while their version says nobody changed them.
        self._jobs = repo.JobCache()
        self.streams = StreamSlots()

    # -- projection ----------------------------------------------------------------------------------------------
    async def project(self, items: Sequence[Incoming]) -> None:
        """Project a batch of events in one transaction; redeliveries (by source and id) are skipped."""
        received_at = self._clock()
        async with unit_of_work(self.sessions) as session:
            conn = await session.connection()
            job_ids = {i.event.data.job_id for i in items}
            keys = [repo.event_key(i.event.source, i.event.id) for i in items]
            claimed, versions = await repo.claim_events_and_lock_jobs(conn, keys, job_ids)
            fresh: list[Incoming] = []
            for item, key in zip(items, keys, strict=True):
                if key in claimed:
                    claimed.discard(key)  # the same event twice in one batch is still one event
                    fresh.append(item)
            if not fresh:
                return
            first_events: dict[str, CloudEvent[Any]] = {}
            for item in fresh:
                first_events.setdefault(item.event.data.job_id, item.event)

            def new_job_from_first_event(job_id: str) -> JobRecord:
                return new_job_for_event(first_events[job_id], received_at)

            records = await repo.load_locked_jobs(conn, first_events, versions, new_job_from_first_event, self._jobs)
            timeline: list[TimelineRow] = []
            findings: dict[str, list[TypoFinding]] = {}
            captions: dict[str, list[CaptionSegment]] = {}
            reset: set[str] = set()
            for item in fresh:
                job = records[item.event.data.job_id]
                out = project_event(job, item.event, received_at=received_at, captions=item.captions)
                if out.timeline is None:
                    # No tenant names here: the log is read by people who may serve either tenant.
                    log.warning(
                        "event ignored: its tenant does not own the job",
                        extra={"job_id": job.job_id, "event_id": item.event.id, "event_type": item.event.type.value},
                    )
                    continue
                if out.reset:
                    # What this batch gathered for the job so far was another tenant's too.
                    reset.add(job.job_id)
                    timeline = [row for row in timeline if row.job_id != job.job_id]
                    findings.pop(job.job_id, None)
                    captions[job.job_id] = []
                timeline.append(out.timeline)
                if out.findings:
                    findings.setdefault(job.job_id, []).extend(out.findings)
                if out.segments is not None:
                    captions[job.job_id] = out.segments
            if reset:
                log.warning("job history from another tenant's events dropped", extra={"count": len(reset)})
                await repo.forget_job_history(conn, sorted(reset))
            await repo.save_projection(conn, records.values(), timeline, list(findings.items()))
            await repo.replace_captions(conn, captions)
            queued = await repo.queue_webhooks(conn, records.values(), received_at)
        self._jobs.store(records.values())
        self._after_commit(list(records), queued)

    async def project_dead_letter(self, letter: DeadLetter) -> bool:
        """Record a dead letter; fail its job only when it is one of that job's own events. False if a repeat.

        It may fail a job only if it is a well-formed event of a type its (internal) subscription carries
        (``letter.refusal`` is None), the job exists, and the event's tenant is the job's. Anything else is kept
        as an orphan with the reason: a dead letter never creates a job, and never fails another tenant's.
        """
        received_at = self._clock()
        try:
            return await self._record_dead_letter(letter, received_at)
        except DataError:
            # Cleaned as it is, PostgreSQL should take it; if not, keep what surely fits rather than have the
            # dead-letter subscription (which has no dead-letter policy) redeliver it forever.
            log.exception("dead letter not storable as read; recording its fingerprint and reason only")
            bare = replace(
                letter,
                event_id=None,
                event_type=None,
                message="",
                source_subscription=None,
                attributes={},
                flags=(*letter.flags, "unstorable"),
                event=None,
                refusal=letter.refusal or Refusal.MALFORMED_ENVELOPE,
            )
            return await self._record_dead_letter(bare, received_at)

    async def _record_dead_letter(self, letter: DeadLetter, received_at: datetime) -> bool:
        async with unit_of_work(self.sessions) as session:
            refusal = letter.refusal
            job: JobRecord | None = None
            if refusal is None:
                job = await repo.lock_job(session, letter.job_id) if letter.job_id else None
                if job is None:
                    refusal = Refusal.UNKNOWN_JOB
                elif job.tenant != letter.tenant:
                    refusal, job = Refusal.TENANT_MISMATCH, None
            if not await repo.record_dead_letter(session, letter, received_at, orphan_reason=refusal):
                return False
            if job is None:
                # No tenant names: the claimed job may be anyone's.
                log.warning(
                    "orphan dead letter recorded",
                    extra={"job_id": letter.job_id, "reason": letter.reason, "orphan_reason": str(refusal)},
                )
                return True
            out = project_dead_letter(job, letter, received_at=received_at)
            log.warning(
                "dead letter of the job's own event recorded: %s",
                letter.message,
                extra={"job_id": job.job_id, "reason": letter.reason, "event_type": letter.event_type},
            )
            await repo.save_jobs(session, [job])
            await repo.add_timeline(session, [out.timeline] if out.timeline is not None else [])
            queued = await repo.queue_webhooks(session, [job], received_at)
        self._after_commit([job.job_id], queued)
        return True

    async def sweep_deadlines(self, *, deadline_s: float, limit: int) -> list[str]:
        """Fail open jobs whose stages stayed silent past the deadline; returns their ids."""
        now = self._clock()
        cutoff = now - timedelta(seconds=deadline_s)
        expired: list[JobRecord] = []
        async with unit_of_work(self.sessions) as session:
            candidates = await repo.lock_overdue_jobs(session, cutoff, limit)
            timeline = []
            for job in candidates:
                out = expire_job(job, now=now, deadline_s=deadline_s)
                if out is not None and out.timeline is not None:
                    expired.append(job)
                    timeline.append(out.timeline)
            await repo.save_jobs(session, expired)
            await repo.add_timeline(session, timeline)
            queued = await repo.queue_webhooks(session, expired, now)
        ids = [j.job_id for j in expired]
        for job in expired:
            log.warning("job failed: %s", job.failure_message, extra={"job_id": job.job_id, "reason": "result_missing"})
        self._after_commit(ids, queued)
        return ids

    def _after_commit(self, job_ids: Sequence[str], webhooks_queued: int) -> None:
        self.changes.notify(job_ids)
        if webhooks_queued and self._on_webhook_queued is not None:
            self._on_webhook_queued()

    # -- queries -----------------------------------------------------------------------------------------------
    async def get_job(self, tenant: str, job_id: str) -> JobRecord | None:
        async with self.sessions() as session:
            return await repo.get_job(session, tenant, job_id)

    async def list_jobs(
        self,
        tenant: str,
        *,
        states: Sequence[JobState],
        created_after: datetime | None,
        created_before: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[JobRecord], str | None]:
        position = repo.decode_cursor(cursor) if cursor else None
        async with self.sessions() as session:
            records, last = await repo.list_jobs(
                session,
                tenant,
                states=states,
                created_after=created_after,
                created_before=created_before,
                cursor=position,
                limit=limit,
            )
        return records, repo.encode_cursor(*last) if last else None

    async def findings(self, tenant: str, job_id: str) -> tuple[JobRecord, list[TypoFinding]] | None:
        async with self.sessions() as session:
            job = await repo.get_job(session, tenant, job_id)
            if job is None:
                return None
            return job, await repo.job_findings(session, job_id)

    async def findings_and_captions(
        self, tenant: str, job_id: str
    ) -> tuple[JobRecord, list[TypoFinding], list[CaptionSegment]] | None:
        async with self.sessions() as session:
            job = await repo.get_job(session, tenant, job_id)
            if job is None:
                return None
            return job, await repo.job_findings(session, job_id), await repo.job_captions(session, job_id)

    async def timeline(self, tenant: str, job_id: str) -> list[TimelineRow] | None:
        async with self.sessions() as session:
            job = await repo.get_job(session, tenant, job_id)
            if job is None:
                return None
            return await repo.job_timeline(session, job_id)
