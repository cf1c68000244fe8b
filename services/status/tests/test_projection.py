"""The projector against the real (embedded) PostgreSQL, migrated with Alembic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from captionqc.runtime.consumer import (
    DEAD_LETTER_MESSAGE,
    DEAD_LETTER_REASON,
    DEAD_LETTER_SOURCE,
    DEAD_LETTER_TRUNCATED,
)
from captionqc.runtime.db import session_factory
from captionqc.schemas import FailureReason, Stage, to_pubsub
from captionqc.schemas.status_api import CaptionsState, JobState, StageState
from captionqc.status.projection import parse_dead_letter
from captionqc.status.service import Incoming, StatusService
from captionqc.status.tables import caption_segments, dead_letters, findings, jobs, timeline

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


async def test_events_are_told_apart_by_source_and_id(service: StatusService, engine: AsyncEngine) -> None:
    first, second = new_job_id(), new_job_id()
    a = requested(first).model_copy(update={"id": "same-id", "source": "//captionqc/gateway"})
    b = requested(second).model_copy(update={"id": "same-id", "source": "//upstream/other"})
    await project(service, a, b)
    await project(service, a, b)  # redelivered: still one each
    for job_id in (first, second):
        assert await service.get_job("acme", job_id) is not None
        assert await count(engine, timeline, job_id) == 1
    # Ids and sources longer than their key columns are keyed by a digest rather than failing the batch forever.
    long = progress(first, Stage.OCR, 0.5).model_copy(update={"id": "i" * 300, "source": "//s/" + "s" * 600})
    await project(service, long)
    await project(service, long)
    assert await count(engine, timeline, first) == 2


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


def runtime_dead_letter(attributes: dict[str, str], reason: str, subscription: str = "status-jobs") -> dict[str, str]:
    """The attributes our consumer runtime forwards a refused message with."""
    return {
        **attributes,
        DEAD_LETTER_REASON: reason,
        DEAD_LETTER_MESSAGE: "refused",
        DEAD_LETTER_SOURCE: f"projects/p/subscriptions/{subscription}",
    }


def policy_dead_letter(event: Any, subscription: str) -> tuple[bytes, dict[str, str]]:
    """An event as Pub/Sub's dead-letter policy forwards it after it kept failing on ``subscription``."""
    data, attrs = to_pubsub(event)
    return data, attrs | {
        "CloudPubSubDeadLetterSourceSubscription": subscription,
        "CloudPubSubDeadLetterSourceSubscriptionProject": "p",
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
    }


async def dead_letter_rows(engine: AsyncEngine, job_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(dead_letters).where(dead_letters.c.job_id == job_id))
        return [dict(r._mapping) for r in result]


async def test_a_dead_letter_of_the_jobs_own_event_fails_it(service: StatusService, engine: AsyncEngine) -> None:
    job_id = new_job_id()
    await project(service, requested(job_id, "beta"))
    letter = parse_dead_letter(*policy_dead_letter(asr_completed(job_id, "beta"), "crosscheck-asr-results"))
    assert letter.refusal is None
    assert await service.project_dead_letter(letter)
    assert not await service.project_dead_letter(letter)  # the same message redelivered
    job = await service.get_job("beta", job_id)
    assert job is not None
    assert job.state is JobState.FAILED
    assert job.failure_reason is FailureReason.DEAD_LETTERED
    assert job.failure_stage is Stage.ASR
    assert job.failure_message == (
        "captionqc.asr.completed dead-lettered on crosscheck-asr-results (max_delivery_attempts): "
        "delivery failed 5 times"
    )
    rows = await service.timeline("beta", job_id)
    assert rows is not None
    assert [r.type for r in rows] == ["captionqc.job.requested", "captionqc.status.dead-lettered"]
    [row] = await dead_letter_rows(engine, job_id)
    assert (row["orphan_reason"], row["tenant"], row["reason"]) == (None, "beta", "max_delivery_attempts")


async def test_a_dead_letter_naming_only_a_job_leaves_it_untouched(service: StatusService, engine: AsyncEngine) -> None:
    """A non-event carrying only ``ce-subject=<victim>``: it proves nothing about the job, so it is an orphan."""
    victim = new_job_id()
    await project(service, requested(victim), crosscheck_completed(victim))
    before = await service.timeline("acme", victim)
    data = b"not an event"
    attrs = runtime_dead_letter({"ce-subject": victim, "ce-id": "marker-1"}, "malformed_envelope")
    assert await service.project_dead_letter(parse_dead_letter(data, attrs))
    job = await service.get_job("acme", victim)
    assert job is not None
    assert (job.state, job.findings_total, job.failure_reason) == (JobState.COMPLETED, 2, None)
    assert await service.timeline("acme", victim) == before
    [row] = await dead_letter_rows(engine, victim)
    assert (row["orphan_reason"], row["reason"], row["event_id"]) == (
        "malformed_envelope",
        "malformed_envelope",
        "marker-1",
    )

    running = new_job_id()
    await project(service, requested(running))
    # Our runtime refused a message naming the job: undecodable, so it fails nothing (the deadline still will).
    data = b'{"job_id": "' + running.encode() + b'"}'
    attrs = runtime_dead_letter({"ce-type": "captionqc.ocr.completed", "ce-subject": running}, "x")
    assert await service.project_dead_letter(parse_dead_letter(data, attrs))
    job = await service.get_job("acme", running)
    assert job is not None
    assert job.state is JobState.ACCEPTED


async def test_a_dead_letter_for_an_unknown_job_creates_no_job(service: StatusService, engine: AsyncEngine) -> None:
    job_id = new_job_id()
    letter = parse_dead_letter(*policy_dead_letter(asr_completed(job_id, "beta"), "crosscheck-asr-results"))
    assert await service.project_dead_letter(letter)
    assert await service.get_job("beta", job_id) is None
    assert await count(engine, jobs, job_id) == 0
    [row] = await dead_letter_rows(engine, job_id)
    assert row["orphan_reason"] == "unknown_job"
    assert await service.project_dead_letter(parse_dead_letter(b"garbage", {"x": "y"}))  # names no job at all


async def test_dead_letters_that_prove_nothing_about_their_job_are_orphans(
    service: StatusService, engine: AsyncEngine
) -> None:
    victim = new_job_id()
    await project(service, requested(victim, "acme"))
    data, attrs = to_pubsub(failed(victim, Stage.OCR))
    # An intake message that kept failing in the gateway, whose publisher added our runtime's attributes naming an
    # internal subscription: a genuine dead letter never carries both kinds.
    intake_data, intake_attrs = policy_dead_letter(requested(victim, "acme"), "gateway-intake")
    forged = runtime_dead_letter(intake_attrs, "max_delivery_attempts", "status-jobs")
    cases = [
        # another tenant's event for the job
        ("tenant_mismatch", policy_dead_letter(asr_completed(victim, "mallory"), "crosscheck-asr-results")),
        # intake messages come from outside: the gateway refused it, its claims prove nothing
        ("untrusted_source", policy_dead_letter(requested(victim, "acme"), "gateway-intake")),
        # a type this subscription's producers never publish
        ("unexpected_type", policy_dead_letter(crosscheck_completed(victim, "acme"), "status-jobs")),
        # our runtime cut an oversized message to fit: whatever is left, it fails nothing
        (
            "message_too_large",
            (data[:20], runtime_dead_letter(attrs | {DEAD_LETTER_TRUNCATED: "true"}, "message_too_large")),
        ),
        # no source subscription, or one that is not ours
        ("untrusted_source", (data, attrs)),
        (
            "untrusted_source",
            (data, {**attrs, "CloudPubSubDeadLetterSourceSubscription": "projects/x/subscriptions/o"}),
        ),
        ("untrusted_source", (intake_data, forged)),
    ]
    for expected, (body, attributes) in cases:
        letter = parse_dead_letter(body, attributes)
        assert letter.refusal is not None or expected == "tenant_mismatch", expected
        assert await service.project_dead_letter(letter), expected
    job = await service.get_job("acme", victim)
    assert job is not None
    assert job.state is JobState.ACCEPTED
    rows = await service.timeline("acme", victim)
    assert rows is not None
    assert [r.type for r in rows] == ["captionqc.job.requested"]
    recorded = sorted(r["orphan_reason"] for r in await dead_letter_rows(engine, victim))
    assert recorded == sorted(expected for expected, _ in cases)
    assert await service.get_job("mallory", victim) is None


async def test_an_unstorable_dead_letter_is_recorded_cleaned_once(service: StatusService, engine: AsyncEngine) -> None:
    job_id = new_job_id()
    attrs = {
        "ce-id": "nul\x00id",
        "ce-subject": job_id,
        "ce-type": "captionqc.\x00ocr.completed\x1b[31m",
        "bad\x00name": "v",
        "authorization": "Bearer secret-token",
        "x-api-token": "secret-token",
        "huge": "x" * 100_000,
        **{f"extra-{i:03d}": str(i) for i in range(150)},
    }
    data = b"\xff\xfe\x00not utf-8\x00"
    letter = parse_dead_letter(data, runtime_dead_letter(attrs, "malformed_\x00envelope"))
    assert await service.project_dead_letter(letter)
    assert not await service.project_dead_letter(
        parse_dead_letter(data, runtime_dead_letter(attrs, "malformed_\x00envelope"))
    )
    [row] = await dead_letter_rows(engine, job_id)
    stored = row["attributes"]
    assert "authorization" not in stored
    assert not any("secret-token" in v for v in stored.values())
    assert len(stored) == 100
    assert all("\x00" not in k + v for k, v in stored.items())
    assert row["event_id"] == "nul\\x00id"
    assert row["reason"] == "malformed_\\x00envelope"
    assert row["data_size"] == len(data)
    assert set(row["flags"]) >= {
        "control_characters",
        "attributes_truncated",
        "secret_attributes_dropped",
        "non_utf8_data",
    }
    assert row["orphan_reason"] == "malformed_envelope"


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
