"""The cross-check service against real PostgreSQL (Alembic-migrated) and the real emulator."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from captionqc.crosscheck.migrate import migrate
from captionqc.crosscheck.settings import CrosscheckSettings
from captionqc.crosscheck.tables import job_inputs
from captionqc.crosscheck.worker import worker_setup
from captionqc.runtime.consumer import ConsumerRunner
from captionqc.runtime.db import session_factory
from captionqc.runtime.pubsub import EventPublisher, subscription_path
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
    JobOptions,
    JobRequested,
    MediaRef,
    OcrCompleted,
    OcrStats,
    Stage,
    StageFailed,
    TimedWord,
    from_pubsub,
    new_event,
)


def words(text: str, start: float, end: float) -> list[TimedWord]:
    tokens = text.split()
    step = (end - start) / len(tokens)
    return [
        TimedWord(start_s=start + i * step, end_s=start + (i + 1) * step, word=t, confidence=0.95)
        for i, t in enumerate(tokens)
    ]


def job_events(
    job_id: str, *, ocr_via_claim_check: Path | None = None, tenant: str = "acme"
) -> dict[str, CloudEvent[Any]]:
    job = new_event(
        EventType.JOB_REQUESTED,
        JobRequested(
            job_id=job_id,
            tenant=tenant,
            media=MediaRef(uri="gs://media/clip.mp4"),
            options=JobOptions(glossary=["Okonkwo"]),
            requested_at=datetime.now(UTC),
        ),
        source="//test",
    )
    segments = [
        CaptionSegment(start_s=0.5, end_s=3.0, text="The council met on Tuesdya", confidence=0.97),
        CaptionSegment(start_s=3.5, end_s=6.0, text="Mayor Okonkwo spoke first", confidence=0.96),
    ]
    ocr_payload: dict[str, Any] = {"segments": segments}
    if ocr_via_claim_check is not None:
        full = OcrCompleted(
            job_id=job_id,
            tenant=tenant,
            segments=segments,
            engine=EngineInfo(name="rapidocr", version="1"),
            stats=OcrStats(media_duration_s=6, frames_sampled=12, frames_ocred=3, processing_s=1),
        )
        path = ocr_via_claim_check / f"{job_id}.json"
        path.write_text(full.model_dump_json())
        ocr_payload = {"segments": None, "result_uri": path.as_uri()}
    ocr = new_event(
        EventType.OCR_COMPLETED,
        OcrCompleted(
            job_id=job_id,
            tenant=tenant,
            engine=EngineInfo(name="rapidocr", version="1"),
            stats=OcrStats(media_duration_s=6, frames_sampled=12, frames_ocred=3, processing_s=1),
            **ocr_payload,
        ),
        source="//test",
    )
    asr = new_event(
        EventType.ASR_COMPLETED,
        AsrCompleted(
            job_id=job_id,
            tenant=tenant,
            words=words("the council met on tuesday", 0.5, 3.0) + words("mayor okonkwo spoke first", 3.5, 6.0),
            engine=EngineInfo(name="faster-whisper", version="tiny.en"),
            stats=AsrStats(media_duration_s=6, processing_s=0.3, real_time_factor=0.05),
        ),
        source="//test",
    )
    return {"job": job, "ocr": ocr, "asr": asr}


def findings_on(project: str, *, expect: int, settle_s: float = 2.0, timeout: float = 20.0) -> list[CloudEvent[Any]]:
    """Everything on the findings topic (via the status subscription), waiting a little past ``expect``."""
    subscriber = pubsub_v1.SubscriberClient()
    path = subscription_path(project, "status-findings")
    got: list[CloudEvent[Any]] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if len(got) >= expect:
                settle_until = settle_until or time.monotonic() + settle_s
                if time.monotonic() > settle_until:
                    break
            resp = subscriber.pull(request={"subscription": path, "max_messages": 50}, timeout=3)
            if resp.received_messages:
                subscriber.acknowledge(
                    request={"subscription": path, "ack_ids": [m.ack_id for m in resp.received_messages]}
                )
                got.extend(from_pubsub(m.message.data, dict(m.message.attributes)) for m in resp.received_messages)
    finally:
        subscriber.close()
    return got


@pytest.fixture
async def settings(fresh_database: Any, tmp_path: Path, pubsub_project: str) -> CrosscheckSettings:
    url = await fresh_database(migrate)
    return CrosscheckSettings(database_url=url, gcp_project=pubsub_project, results_uri=str(tmp_path))


class Workers:
    """N cross-check workers in this process, each with its own engine, relay and streaming pulls."""

    def __init__(self, settings: CrosscheckSettings, count: int) -> None:
        self.settings = settings
        self.count = count
        self._stack: list[Any] = []

    async def __aenter__(self) -> Workers:
        for _ in range(self.count):
            publisher = EventPublisher(self.settings.gcp_project)
            cm = worker_setup(self.settings, publisher)
            setup = await cm.__aenter__()
            runner = ConsumerRunner(
                project=self.settings.gcp_project,
                source="//captionqc/crosscheck",
                routes=setup.routes,
                publisher=publisher,
                failure_stage=Stage.CROSSCHECK,
            )
            await runner.start()
            self._stack.append((runner, cm, publisher))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for runner, cm, publisher in reversed(self._stack):
            await runner.stop()
            await cm.__aexit__(None, None, None)
            publisher.close()


@pytest.fixture
async def publisher(pubsub_project: str) -> AsyncIterator[EventPublisher]:
    pub = EventPublisher(pubsub_project)
    yield pub
    pub.close()


@pytest.mark.parametrize("order", [("job", "ocr", "asr"), ("asr", "ocr", "job"), ("ocr", "job", "asr")])
async def test_any_order_gives_one_completed(
    settings: CrosscheckSettings, publisher: EventPublisher, order: tuple[str, ...]
) -> None:
    job_id = str(uuid.uuid4())
    events = job_events(job_id)
    async with Workers(settings, 1):
        for name in order:
            await publisher.publish(events[name])
            await asyncio.sleep(0.3)
        got = await asyncio.to_thread(findings_on, settings.gcp_project, expect=1)
    assert [e.type for e in got] == [EventType.CROSSCHECK_COMPLETED]
    completed = got[0].data
    assert isinstance(completed, CrosscheckCompleted)
    flagged = {f.word: f for f in completed.findings}
    assert "Tuesdya" in flagged
    assert flagged["Tuesdya"].kind is CheckKind.MISSPELLING
    assert flagged["Tuesdya"].suggestion == "Tuesday"  # the dictionary's word, in the caption's case
    assert "Okonkwo" not in flagged  # glossary term from the job's options


async def test_duplicates_and_two_concurrent_workers_give_exactly_one_outcome(
    settings: CrosscheckSettings, publisher: EventPublisher
) -> None:
    job_ids = [str(uuid.uuid4()) for _ in range(4)]
    async with Workers(settings, 2):
        # Every input twice, OCR and ASR results of each job published together: the two workers race.
        for job_id in job_ids:
            events = job_events(job_id)
            await publisher.publish(events["job"])
        await asyncio.sleep(0.5)
        sends = []
        for job_id in job_ids:
            events = job_events(job_id)
            sends += [publisher.publish(events["ocr"]), publisher.publish(events["asr"])] * 2
        await asyncio.gather(*sends)
        got = await asyncio.to_thread(findings_on, settings.gcp_project, expect=4, settle_s=3.0)
    by_job: dict[str, list[str]] = {}
    for event in got:
        by_job.setdefault(event.subject, []).append(event.id)
    assert sorted(by_job) == sorted(job_ids)
    # A redelivered outbox row may repeat an event, but only ever with the same ce-id: one outcome per job.
    assert all(len(set(ids)) == 1 for ids in by_job.values())
    engine = create_async_engine(settings.database_dsn())
    async with session_factory(engine)() as session:
        decided = (await session.execute(select(job_inputs.c.job_id, job_inputs.c.outcome_event_id))).all()
    await engine.dispose()
    assert all(row.outcome_event_id for row in decided)


async def test_failed_stage_ends_the_job(settings: CrosscheckSettings, publisher: EventPublisher) -> None:
    job_id = str(uuid.uuid4())
    events = job_events(job_id)
    failed = new_event(
        EventType.ASR_FAILED,
        StageFailed(
            job_id=job_id,
            tenant="acme",
            stage=Stage.ASR,
            reason=FailureReason.NO_AUDIO_STREAM,
            message="the media has no audio stream",
        ),
        source="//test",
    )
    async with Workers(settings, 1):
        await publisher.publish(events["job"])
        await publisher.publish(failed)
        await asyncio.sleep(0.5)
        await publisher.publish(events["ocr"])  # arrives after the decision: changes nothing
        got = await asyncio.to_thread(findings_on, settings.gcp_project, expect=1)
    assert [e.type for e in got] == [EventType.CROSSCHECK_FAILED]
    data = got[0].data
    assert isinstance(data, StageFailed)
    assert data.reason is FailureReason.NO_AUDIO_STREAM
    assert data.message.startswith("asr failed:")


async def test_claim_checked_ocr_result_is_fetched(
    settings: CrosscheckSettings, publisher: EventPublisher, tmp_path: Path
) -> None:
    job_id = str(uuid.uuid4())
    events = job_events(job_id, ocr_via_claim_check=tmp_path)
    async with Workers(settings, 1):
        for name in ("job", "ocr", "asr"):
            await publisher.publish(events[name])
        got = await asyncio.to_thread(findings_on, settings.gcp_project, expect=1)
    assert [e.type for e in got] == [EventType.CROSSCHECK_COMPLETED]
    assert isinstance(got[0].data, CrosscheckCompleted)
    assert any(f.word == "Tuesdya" for f in got[0].data.findings)


async def job_row(settings: CrosscheckSettings, job_id: str) -> Any:
    engine = create_async_engine(settings.database_dsn())
    try:
        async with session_factory(engine)() as session:
            return (await session.execute(select(job_inputs).where(job_inputs.c.job_id == job_id))).one()
    finally:
        await engine.dispose()


async def test_another_tenants_events_never_change_a_job(
    settings: CrosscheckSettings, publisher: EventPublisher, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = str(uuid.uuid4())
    victim = job_events(job_id)
    forged = job_events(job_id, tenant="mallory")
    forged_failure = new_event(
        EventType.OCR_FAILED,
        StageFailed(
            job_id=job_id, tenant="mallory", stage=Stage.OCR, reason=FailureReason.MEDIA_NOT_FOUND, message="forged"
        ),
        source="//test",
    )
    caplog.set_level(logging.INFO, logger="captionqc.crosscheck")
    async with Workers(settings, 1):
        await publisher.publish(victim["job"])
        await asyncio.sleep(0.5)
        # Another tenant names the same job: its result and its failure would decide the victim's job.
        for event in (forged["ocr"], forged["asr"], forged_failure):
            await publisher.publish(event)
        await asyncio.sleep(1.5)
        row = await job_row(settings, job_id)
        assert (row.tenant, row.ocr, row.asr, row.failure, row.decided_at) == ("acme", None, None, None, None)
        await publisher.publish(victim["ocr"])
        await publisher.publish(victim["asr"])
        got = await asyncio.to_thread(findings_on, settings.gcp_project, expect=1)
    assert [(e.type, e.data.tenant) for e in got] == [(EventType.CROSSCHECK_COMPLETED, "acme")]
    dropped = [r for r in caplog.records if r.getMessage().startswith("input dropped")]
    assert len(dropped) == 3
    for record in dropped:
        for tenant in ("acme", "mallory"):
            assert tenant not in repr(record.__dict__)


async def test_a_decided_job_takes_no_new_inputs(settings: CrosscheckSettings, publisher: EventPublisher) -> None:
    job_id = str(uuid.uuid4())
    events = job_events(job_id)
    failed = new_event(
        EventType.ASR_FAILED,
        StageFailed(
            job_id=job_id, tenant="acme", stage=Stage.ASR, reason=FailureReason.NO_AUDIO_STREAM, message="no audio"
        ),
        source="//test",
    )
    async with Workers(settings, 1):
        await publisher.publish(events["job"])
        await publisher.publish(failed)
        got = await asyncio.to_thread(findings_on, settings.gcp_project, expect=1, settle_s=0.5)
        before = await job_row(settings, job_id)
        await publisher.publish(events["ocr"])  # arrives after the decision
        await asyncio.sleep(1.5)
        after = await job_row(settings, job_id)
    assert [e.type for e in got] == [EventType.CROSSCHECK_FAILED]
    assert before.decided_at is not None
    assert after.ocr is None
    assert (after.updated_at, after.outcome_event_id) == (before.updated_at, before.outcome_event_id)
