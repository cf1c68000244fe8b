"""The projector against the real (embedded) PostgreSQL, migrated with Alembic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from captionqc.runtime.consumer import DEAD_LETTER_MESSAGE, DEAD_LETTER_REASON, DEAD_LETTER_SOURCE
from captionqc.runtime.db import session_factory
from captionqc.schemas import FailureReason, Stage
from captionqc.schemas.status_api import CaptionsState, JobState, StageState
from captionqc.status.projection import parse_dead_letter
from captionqc.status.service import Incoming, StatusService
from captionqc.status.tables import caption_segments, findings, timeline

from .helpers import (
    FINDINGS,
    asr_completed,
    crosscheck_completed,
    failed,
    later,
    new_job_id,
    ocr_completed,
    progress,
    requested,
)

TRACE_A = "a" * 32
TRACE_B = "b" * 32


async def project(service: StatusService, *events: Any) -> None:
    await service.project([Incoming(e) for e in events])


async def count(engine: AsyncEngine, table: Any, job_id: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).where(table.c.job_id == job_id))).scalar_one())


async def test_result_before_job_requested_still_lands(service: StatusService, engine: AsyncEngine) -> None:
    job_id = new_job_id()
    await project(service, asr_completed(job_id, at=later(30), trace_id=TRACE_B))
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.state is JobState.RUNNING
    assert job.stages[Stage.ASR].state is StageState.COMPLETED
    assert job.media_uri is None
    assert job.trace_id == TRACE_B

    await project(service, requested(job_id, trace_id=TRACE_A), ocr_completed(job_id, at=later(40)))
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.media_uri == "gs://media/clip.mp4"
    assert job.requested_at == later(0)
    assert job.created_at == later(0)
    assert job.state is JobState.RUNNING  # job.requested arriving late does not move it back to accepted
    assert job.trace_id == TRACE_A  # the request's trace wins over the first event's
    # The OCR and ASR clocks start at the request, now that it is known.
    assert job.stages[Stage.ASR].seconds == 30.0
    assert job.stages[Stage.OCR].seconds == 40.0
    assert job.captions_state is CaptionsState.AVAILABLE
    assert await count(engine, caption_segments, job_id) == 2

    await project(service, crosscheck_completed(job_id, at=later(45)))
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.state is JobState.COMPLETED
    assert job.stages[Stage.CROSSCHECK].seconds == 5.0
    assert job.finding_counts == {"misspelling": 1, "wrong_word": 1}
    assert job.findings_total == 2
    assert await count(engine, timeline, job_id) == 4


async def test_duplicate_events_are_projected_once(service: StatusService, engine: AsyncEngine) -> None:
    job_id = new_job_id()
    tick = progress(job_id, Stage.OCR, 0.5)
    done = crosscheck_completed(job_id)
    # Twice in one batch and again in a later batch: Pub/Sub's at-least-once delivery can do both.
    await project(service, requested(job_id), tick, tick, done)
    await project(service, tick, done)
    assert await count(engine, timeline, job_id) == 3
    assert await count(engine, findings, job_id) == 2
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.findings_total == 2


async def test_finished_job_never_moves_back(service: StatusService, engine: AsyncEngine) -> None:
    job_id = new_job_id()
    await project(service, requested(job_id), progress(job_id, Stage.OCR, 0.6), crosscheck_completed(job_id))
    await project(service, progress(job_id, Stage.OCR, 0.3), failed(job_id, Stage.ASR))
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.state is JobState.COMPLETED
    assert job.failure_reason is None
    assert job.stages[Stage.OCR].progress == 0.6
    assert await count(engine, timeline, job_id) == 5  # the late events are history, not state

    other = new_job_id()
    await project(service, requested(other), failed(other, Stage.ASR))
    await project(service, crosscheck_completed(other), progress(other, Stage.OCR, 0.9))
    job = await service.get_job("acme", other)
    assert job is not None
    assert job.state is JobState.FAILED
    assert job.failure_reason is FailureReason.NO_AUDIO_STREAM
    assert job.failure_stage is Stage.ASR
    assert job.stages[Stage.OCR].progress == 0.0


async def test_progress_never_goes_backwards(service: StatusService) -> None:
    job_id = new_job_id()
    await project(service, progress(job_id, Stage.ASR, 0.7), progress(job_id, Stage.ASR, 0.2))
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.stages[Stage.ASR].progress == 0.7
    assert job.stages[Stage.ASR].state is StageState.RUNNING


async def test_event_of_another_tenant_does_not_touch_the_job(service: StatusService, engine: AsyncEngine) -> None:
    job_id = new_job_id()
    await project(service, requested(job_id, "acme"), ocr_completed(job_id), asr_completed(job_id))
    await project(service, crosscheck_completed(job_id, "mallory"), failed(job_id, Stage.ASR, tenant="mallory"))
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.state is JobState.RUNNING
    assert job.findings_total == 0
    assert job.stages[Stage.CROSSCHECK].state is StageState.PENDING
    assert job.stages[Stage.ASR].state is StageState.COMPLETED
    assert await count(engine, findings, job_id) == 0
    assert await service.get_job("mallory", job_id) is None
    # The forged events are not the job's history: the owner must not even learn that someone else has the id.
    rows = await service.timeline("acme", job_id)
    assert rows is not None
    assert [r.type for r in rows] == ["captionqc.job.requested", "captionqc.ocr.completed", "captionqc.asr.completed"]
    assert "mallory" not in repr(rows)


async def test_forged_result_cannot_touch_another_tenants_finished_job(
    service: StatusService, engine: AsyncEngine
) -> None:
    job_id = new_job_id()
    await project(service, requested(job_id, "acme"), crosscheck_completed(job_id, "acme"))
    forged = [FINDINGS[0].model_copy(update={"id": "forged", "word": "forged"})]
    await project(service, crosscheck_completed(job_id, "mallory", findings=forged))
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.state is JobState.COMPLETED
    assert job.finding_counts == {"misspelling": 1, "wrong_word": 1}
    stored = await service.findings("acme", job_id)
    assert stored is not None
    assert [f.id for f in stored[1]] == ["f1", "f2"]
    assert await count(engine, timeline, job_id) == 2


async def test_a_completed_job_ignores_a_second_crosscheck_completed(
    service: StatusService, engine: AsyncEngine
) -> None:
    job_id = new_job_id()
    await project(service, requested(job_id), crosscheck_completed(job_id, at=later(10)))
    second = crosscheck_completed(
        job_id, at=later(20), findings=[FINDINGS[0].model_copy(update={"id": "f3", "word": "late"})]
    )
    await project(service, second)
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.state is JobState.COMPLETED
    assert job.completed_at == later(10)
    assert job.finding_counts == {"misspelling": 1, "wrong_word": 1}
    assert job.findings_total == 2
    assert await count(engine, findings, job_id) == 2
    rows = await service.timeline("acme", job_id)
    assert rows is not None
    assert rows[-1].summary.endswith("(not applied: the job had finished)")  # history, not state

    failed_job = new_job_id()
    await project(service, requested(failed_job), failed(failed_job, Stage.OCR))
    await project(service, crosscheck_completed(failed_job))
    assert await count(engine, findings, failed_job) == 0
    job = await service.get_job("acme", failed_job)
    assert job is not None
    assert (job.state, job.findings_total, job.finding_counts) == (JobState.FAILED, 0, {})


async def test_job_requested_forgets_what_another_tenants_events_did_before_it(
    service: StatusService, engine: AsyncEngine
) -> None:
    job_id = new_job_id()
    # Events of another tenant reach a job id before its request: they create the job, as results may.
    await project(service, ocr_completed(job_id, "mallory"), crosscheck_completed(job_id, "mallory"))
    assert await count(engine, findings, job_id) == 2
    await project(service, progress(job_id, Stage.ASR, 0.5, "mallory"), requested(job_id, "acme"))
    assert await service.get_job("mallory", job_id) is None
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.state is JobState.ACCEPTED
    assert job.findings_total == 0
    assert all(job.stages[s].state is StageState.PENDING for s in Stage)
    assert job.captions_state is CaptionsState.PENDING
    for table in (findings, caption_segments):
        assert await count(engine, table, job_id) == 0
    rows = await service.timeline("acme", job_id)
    assert rows is not None
    assert [r.type for r in rows] == ["captionqc.job.requested"]


async def test_a_second_job_requested_changes_nothing(service: StatusService) -> None:
    job_id = new_job_id()
    await project(service, requested(job_id, callback_url="https://hooks.example.test/a"))
    await project(service, requested(job_id, callback_url="https://elsewhere.example.test/b", at=later(5)))
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.callback_url == "https://hooks.example.test/a"
    assert job.requested_at == later(0)


async def test_dead_letter_from_the_runtime_fails_the_job(service: StatusService) -> None:
    job_id = new_job_id()
    await project(service, requested(job_id))
    attrs = {
        "ce-id": "bad-1",
        "ce-type": "captionqc.ocr.completed",
        "ce-subject": job_id,
        DEAD_LETTER_REASON: "invalid_event_data",
        DEAD_LETTER_MESSAGE: "segments: Field required",
        DEAD_LETTER_SOURCE: "projects/p/subscriptions/crosscheck-ocr-results",
    }
    letter = parse_dead_letter(b'{"job_id": "not json', attrs)
    assert await service.project_dead_letter(letter)
    assert not await service.project_dead_letter(letter)  # the same message redelivered
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.state is JobState.FAILED
    assert job.failure_reason is FailureReason.DEAD_LETTERED
    assert job.failure_stage is Stage.OCR
    assert job.failure_message is not None
    assert "invalid_event_data" in job.failure_message
    assert "crosscheck-ocr-results" in job.failure_message
    timeline_rows = await service.timeline("acme", job_id)
    assert timeline_rows is not None
    assert [r.type for r in timeline_rows] == ["captionqc.job.requested", "captionqc.status.dead-lettered"]


async def test_dead_letter_from_pubsub_policy_creates_the_job_when_unknown(service: StatusService) -> None:
    job_id = new_job_id()
    event = asr_completed(job_id, "beta")
    from captionqc.schemas import to_pubsub

    data, attrs = to_pubsub(event)
    attrs |= {
        "CloudPubSubDeadLetterSourceSubscription": "projects/p/subscriptions/crosscheck-asr-results",
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
    }
    assert await service.project_dead_letter(parse_dead_letter(data, attrs))
    job = await service.get_job("beta", job_id)
    assert job is not None
    assert job.state is JobState.FAILED
    assert job.failure_reason is FailureReason.DEAD_LETTERED
    assert job.failure_message == (
        "captionqc.asr.completed dead-lettered on crosscheck-asr-results (max_delivery_attempts): "
        "delivery failed 5 times"
    )


async def test_dead_letter_naming_no_job_is_kept(service: StatusService) -> None:
    assert await service.project_dead_letter(parse_dead_letter(b"garbage", {"x": "y"}))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_deadline_sweeper_fails_silent_jobs_once(engine: AsyncEngine) -> None:
    clock = Clock()
    service = StatusService(session_factory(engine), clock=clock)
    waiting_asr, waiting_both, waiting_cross, fresh, done = (new_job_id() for _ in range(5))
    await project(service, requested(waiting_asr), ocr_completed(waiting_asr))
    await project(service, requested(waiting_both))
    await project(service, requested(waiting_cross), ocr_completed(waiting_cross), asr_completed(waiting_cross))
    await project(service, requested(done), crosscheck_completed(done))
    clock.now += timedelta(seconds=600)
    await project(service, requested(fresh))
    clock.now += timedelta(seconds=400)  # 1000 s after the first four, 400 s after `fresh`

    expired = await service.sweep_deadlines(deadline_s=900, limit=10)
    assert sorted(expired) == sorted([waiting_asr, waiting_both, waiting_cross])
    assert await service.sweep_deadlines(deadline_s=900, limit=10) == []  # already failed: never twice

    messages = {}
    for job_id in expired:
        job = await service.get_job("acme", job_id)
        assert job is not None
        assert job.state is JobState.FAILED
        assert job.failure_reason is FailureReason.RESULT_MISSING
        messages[job_id] = job.failure_message
    assert messages == {
        waiting_asr: "asr result missing after 900 s",
        waiting_both: "ocr and asr results missing after 900 s",
        waiting_cross: "crosscheck result missing after 900 s",
    }
    fresh_job = await service.get_job("acme", fresh)
    assert fresh_job is not None
    assert fresh_job.state is JobState.ACCEPTED


async def test_deadline_sweeper_is_bounded_per_pass(engine: AsyncEngine) -> None:
    clock = Clock()
    service = StatusService(session_factory(engine), clock=clock)
    ids = [new_job_id() for _ in range(5)]
    await project(service, *(requested(j) for j in ids))
    clock.now += timedelta(seconds=1000)
    assert len(await service.sweep_deadlines(deadline_s=900, limit=3)) == 3
    assert len(await service.sweep_deadlines(deadline_s=900, limit=3)) == 2


async def test_progress_keeps_a_job_alive(engine: AsyncEngine) -> None:
    clock = Clock()
    service = StatusService(session_factory(engine), clock=clock)
    job_id = new_job_id()
    await project(service, requested(job_id))
    clock.now += timedelta(seconds=800)
    await project(service, progress(job_id, Stage.OCR, 0.5), progress(job_id, Stage.ASR, 0.5))
    clock.now += timedelta(seconds=800)
    assert await service.sweep_deadlines(deadline_s=900, limit=10) == []
