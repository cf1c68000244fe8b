"""The status subscriptions through the real emulator: events in, read model out; every dead letter recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from captionqc.runtime.consumer import ConsumerRunner
from captionqc.runtime.pubsub import EventPublisher
from captionqc.schemas import Stage, TopicName
from captionqc.schemas.status_api import JobState
from captionqc.status.consumer import CaptionFetcher, ProjectionBatcher, status_routes
from captionqc.status.service import Incoming, StatusService
from captionqc.status.settings import StatusSettings
from captionqc.status.tables import dead_letters

from .helpers import SECRET, crosscheck_completed, new_job_id, ocr_completed, progress, requested


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


@pytest.fixture
async def running(pubsub_project: str, service: StatusService, tmp_path: Any) -> AsyncIterator[EventPublisher]:
    settings = StatusSettings(gcp_project=pubsub_project, results_uri=str(tmp_path), jwt_secret=SecretStr(SECRET))
    publisher = EventPublisher(pubsub_project)
    batcher = ProjectionBatcher(service.project, max_batch=50, max_wait_s=0.01)
    batcher.start()
    runner = ConsumerRunner(
        project=pubsub_project,
        source="//captionqc/status",
        routes=status_routes(settings, service, batcher, CaptionFetcher(settings.results_uri)),
        publisher=publisher,
        failure_stage=None,
    )
    try:
        async with runner:
            yield publisher
    finally:
        await batcher.stop()
        publisher.close()


async def test_published_events_reach_the_read_model(running: EventPublisher, service: StatusService) -> None:
    job_id = new_job_id()
    for event in (
        requested(job_id),
        progress(job_id, Stage.OCR, 0.5),
        ocr_completed(job_id),
        crosscheck_completed(job_id),
    ):
        await running.publish(event)

    async def completed() -> bool:
        job = await service.get_job("acme", job_id)
        return job is not None and job.state is JobState.COMPLETED and job.media_uri is not None

    await eventually(completed)
    rows = await service.timeline("acme", job_id)
    assert rows is not None
    await eventually(lambda: _timeline_has(service, job_id, 4))


async def _timeline_has(service: StatusService, job_id: str, n: int) -> bool:
    rows = await service.timeline("acme", job_id)
    return rows is not None and len(rows) == n


async def _dead_letters(service: StatusService, **where: str) -> list[dict[str, Any]]:
    async with service.sessions() as session:
        stmt = select(dead_letters).filter_by(**where)
        return [dict(r._mapping) for r in await session.execute(stmt)]


async def test_an_undecodable_event_naming_a_job_is_an_orphan_dead_letter(
    running: EventPublisher, service: StatusService
) -> None:
    job_id = new_job_id()
    await running.publish(requested(job_id))
    await eventually(lambda: _timeline_has(service, job_id, 1))
    attrs = {
        "ce-id": "bad-ocr-1",
        "ce-source": "//upstream",
        "ce-specversion": "1.0",
        "ce-type": "captionqc.ocr.completed",
        "ce-subject": job_id,
    }
    # Published to the results topic: status-ocr-results cannot decode it and dead-letters it; the dead-letter
    # subscription records it. Undecodable, it proves nothing about the job it names: the job is untouched.
    await running.publish_raw(TopicName.OCR_RESULTS, b'{"job_id": "' + job_id.encode() + b'"}', attrs)

    async def recorded() -> bool:
        return bool(await _dead_letters(service, event_id="bad-ocr-1"))

    await eventually(recorded)
    [letter] = await _dead_letters(service, event_id="bad-ocr-1")
    assert (letter["job_id"], letter["reason"], letter["orphan_reason"]) == (
        job_id,
        "invalid_event_data",
        "invalid_event_data",
    )
    assert letter["source_subscription"].endswith("/status-ocr-results")
    job = await service.get_job("acme", job_id)
    assert job is not None
    assert job.state is JobState.ACCEPTED
    assert await _timeline_has(service, job_id, 1)


async def test_a_nul_laden_dead_letter_is_recorded_once_and_acked(
    running: EventPublisher, service: StatusService, pubsub_emulator: Any, pubsub_project: str
) -> None:
    job_id, marker = new_job_id(), new_job_id()
    nul_laden = {
        "ce-id": "nul-\x00-marker",
        "ce-subject": job_id,
        "na\x00me": "value with \x00 and \x07",
        "authorization": "Bearer not-to-be-stored",
        "long": "\x00" * 1000,  # within Pub/Sub's 1024 bytes, four times that once escaped
    }
    # Straight onto the dead-letter topic: status-dead-letter has no dead-letter policy, so a message its handler
    # failed on would be redelivered forever. The second is a decoder bomb: JSON nested past Python's recursion limit.
    await running.publish_raw(TopicName.DEAD_LETTER, b"\x00\xff\xfe not utf-8 \x00", nul_laden)
    await running.publish_raw(TopicName.DEAD_LETTER, b"[" * 100_000, {"ce-id": marker})

    async def recorded() -> bool:
        return bool(await _dead_letters(service, job_id=job_id)) and bool(await _dead_letters(service, event_id=marker))

    await eventually(recorded)
    subscription = f"projects/{pubsub_project}/subscriptions/status-dead-letter"

    async def settled() -> bool:
        state = pubsub_emulator.subscription_state(subscription)
        return bool(state["acked"] == 2 and state["outstanding"] == 0 and state["backlog"] == 0)

    await eventually(settled)
    await asyncio.sleep(2.5)  # past the retry backoff: a nacked copy would have come back by now
    state = pubsub_emulator.subscription_state(subscription)
    assert (state["delivered"], state["acked"]) == (2, 2)
    [letter] = await _dead_letters(service, job_id=job_id)
    assert letter["orphan_reason"] == "malformed_envelope"
    assert "non_utf8_data" in letter["flags"]
    assert "authorization" not in letter["attributes"]
    assert not any("\x00" in k + v for k, v in letter["attributes"].items())
    [bomb] = await _dead_letters(service, event_id=marker)
    assert (bomb["job_id"], bomb["orphan_reason"], bomb["data_size"]) == (None, "malformed_envelope", 100_000)


async def test_claim_checked_captions_are_fetched(
    running: EventPublisher, service: StatusService, tmp_path: Any
) -> None:
    job_id = new_job_id()
    stored = ocr_completed(job_id)
    path = tmp_path / f"{job_id}.json"
    path.write_bytes(stored.data.model_dump_json().encode())
    await running.publish(ocr_completed(job_id, result_uri=path.as_uri()))
    missing = new_job_id()
    await running.publish(ocr_completed(missing, result_uri=(tmp_path / "nope.json").as_uri()))

    async def both() -> bool:
        a = await service.findings_and_captions("acme", job_id)
        b = await service.get_job("acme", missing)
        return a is not None and a[0].captions_state.value == "available" and b is not None

    await eventually(both)
    got = await service.findings_and_captions("acme", job_id)
    assert got is not None
    assert [s.text for s in got[2]] == [s.text for s in stored.data.segments]
    job = await service.get_job("acme", missing)
    assert job is not None
    assert job.captions_state.value == "unavailable"
    assert job.captions_note is not None
    assert "no stored result" in job.captions_note


async def test_batcher_isolates_a_failing_event() -> None:
    seen: list[list[str]] = []

    async def project(items: Sequence[Incoming]) -> None:
        ids = [i.event.data.job_id for i in items]
        seen.append(ids)
        if bad in ids:
            raise RuntimeError("cannot project this one")

    good, bad = new_job_id(), new_job_id()
    batcher = ProjectionBatcher(project, max_batch=10, max_wait_s=0.05)
    batcher.start()
    try:
        results = await asyncio.gather(
            batcher.submit(Incoming(requested(good))),
            batcher.submit(Incoming(requested(bad))),
            return_exceptions=True,
        )
    finally:
        await batcher.stop()
    assert results[0] is None
    assert isinstance(results[1], RuntimeError)
    assert seen[0] == [good, bad]  # one batch first, then one by one
    assert seen[1:] == [[good], [bad]]
