"""The projector reuses the job rows it wrote last (``JobCache``): never past a change made by another writer, and
never with the changes of a batch that rolled back."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from captionqc.runtime.db import session_factory
from captionqc.schemas import FailureReason, Stage, to_pubsub
from captionqc.schemas.status_api import JobState
from captionqc.status.projection import new_job, parse_dead_letter
from captionqc.status.repository import JobCache
from captionqc.status.service import Incoming, StatusService

from .helpers import T0, crosscheck_completed, failed, new_job_id, ocr_completed, progress, requested


async def project(service: StatusService, *events: Any) -> None:
    await service.project([Incoming(e) for e in events])


async def test_a_row_another_replica_changed_is_read_again(engine: AsyncEngine) -> None:
    replica_a = StatusService(session_factory(engine))
    replica_b = StatusService(session_factory(engine))
    job_id = new_job_id()
    await project(replica_a, requested(job_id), progress(job_id, Stage.OCR, 0.3))
    await project(replica_b, failed(job_id, Stage.ASR))
    # replica_a still holds the job as running at 30 %: the row's version tells it the job has moved on.
    await project(replica_a, progress(job_id, Stage.OCR, 0.6))
    job = await replica_a.get_job("acme", job_id)
    assert job is not None
    assert job.state is JobState.FAILED
    assert job.failure_reason is FailureReason.NO_AUDIO_STREAM
    assert job.stages[Stage.OCR].progress == 0.3


async def test_a_row_the_dead_letter_path_changed_is_read_again(service: StatusService) -> None:
    job_id = new_job_id()
    await project(service, requested(job_id), progress(job_id, Stage.OCR, 0.5))
    data, attrs = to_pubsub(ocr_completed(job_id))
    attrs["CloudPubSubDeadLetterSourceSubscription"] = "status-ocr-results"
    assert await service.project_dead_letter(parse_dead_letter(data, attrs))
    await project(service, progress(job_id, Stage.ASR, 0.5), crosscheck_completed(job_id))
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.state is JobState.FAILED  # a failed job never moves back, even to completed
    assert job.failure_reason is FailureReason.DEAD_LETTERED
    assert job.findings_total == 0  # and gains no findings
    assert job.stages[Stage.ASR].progress == 0.0  # late progress is history only


async def test_a_batch_that_rolls_back_leaves_nothing_behind(service: StatusService, engine: AsyncEngine) -> None:
    job_id = new_job_id()
    await project(service, requested(job_id), progress(job_id, Stage.OCR, 0.2))
    # Fail the next batch's write, after the projector has changed the job in memory.
    async with engine.begin() as conn:
        await conn.execute(
            text("ALTER TABLE status.timeline ADD CONSTRAINT refuse_ocr_90 CHECK (strpos(summary, 'ocr 90%') = 0)")
        )
    with pytest.raises(IntegrityError):
        await project(service, progress(job_id, Stage.OCR, 0.9))
    await project(service, progress(job_id, Stage.ASR, 0.5))
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.stages[Stage.OCR].progress == 0.2
    assert job.stages[Stage.ASR].progress == 0.5
    timeline = await service.timeline("acme", job_id)
    assert timeline is not None
    assert len(timeline) == 3


def _committed(job_id: str, version: int) -> Any:
    record = new_job(job_id, "acme", event_time=T0, received_at=T0, trace_id=None)
    record.loaded_row = {"xmin": version}
    return record


def test_cache_hands_a_record_out_once_and_only_at_its_version() -> None:
    cache = JobCache()
    first, second = new_job_id(), new_job_id()
    cache.store([_committed(first, 7), _committed(second, 7)])
    assert cache.take(first, 8) is None  # written since by someone else
    assert cache.take(first, 7) is None  # and dropped
    taken = cache.take(second, 7)
    assert taken is not None
    assert taken.job_id == second
    assert cache.take(second, 7) is None  # out until its batch commits and stores it back
    assert len(cache) == 0


def test_cache_is_bounded_by_count_and_age() -> None:
    ids = [new_job_id() for _ in range(3)]
    cache = JobCache(max_jobs=2)
    cache.store([_committed(j, 1) for j in ids])
    assert len(cache) == 2
    assert cache.take(ids[0], 1) is None  # the least recently stored went first
    assert cache.take(ids[2], 1) is not None

    stale = JobCache(max_age_s=0.0)
    stale.store([_committed(ids[0], 1)])
    assert stale.take(ids[0], 1) is None
