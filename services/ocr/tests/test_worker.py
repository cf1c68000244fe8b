"""The OCR worker end to end on the real Pub/Sub emulator: job.requested in, ocr.completed / ocr.failed out."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from captionqc.media.testing import tenant_folder, with_undecodable_stream
from captionqc.ocr.service import SUBSCRIPTION, worker_setup
from captionqc.ocr.settings import OcrSettings
from captionqc.runtime.consumer import ConsumerRunner
from captionqc.runtime.pubsub import EventPublisher, subscription_path
from captionqc.runtime.storage import LocalResultStore
from captionqc.runtime.testing.bus import job_event, pull_events
from captionqc.schemas import (
    EventType,
    FailureReason,
    OcrCompleted,
    RegionHint,
    Stage,
    deterministic_event_id,
)

from .scoring import SAMPLES, sample_clips, score_clip, truth_of, write_audio_only

pytestmark = pytest.mark.slow
T = TypeVar("T")
# A strip at the top of the frame holds no caption: OCR finds nothing there quickly.
NO_CAPTIONS = RegionHint(x=0.0, y=0.0, width=1.0, height=0.1)


@pytest.fixture
async def publisher(pubsub_project: str) -> AsyncIterator[EventPublisher]:
    pub = EventPublisher(pubsub_project)
    yield pub
    pub.close()


async def with_worker(
    settings: OcrSettings, project: str, publisher: EventPublisher, body: Callable[[], Awaitable[T]]
) -> T:
    """Run the OCR worker (its real setup and the real consumer runner) while ``body`` runs."""
    async with (
        worker_setup(settings, publisher) as setup,
        ConsumerRunner(
            project=project,
            source="//captionqc/ocr",
            routes=setup.routes,
            publisher=publisher,
            failure_stage=Stage.OCR,
            threads=settings.worker_threads,
            grace_s=5,
        ),
    ):
        return await body()


def shortest_clip() -> Path:
    return min(sample_clips(), key=lambda p: truth_of(p)["duration_s"])


def news_clip() -> Path:
    """The shortest full news clip: enough captions that its result exceeds the 1 KB inline limit below."""
    return min(
        (p for p in sample_clips() if len(truth_of(p)["captions"]) >= 5), key=lambda p: truth_of(p)["duration_s"]
    )


async def test_job_is_read_and_a_large_result_travels_by_claim_check(
    pubsub_project: str, publisher: EventPublisher, tmp_path: Path
) -> None:
    clip = news_clip()
    results = tmp_path / "results"
    # A 1 KB inline limit forces the claim check with real segments.
    acme = tenant_folder(tmp_path / "media", linked_to=SAMPLES)
    settings = OcrSettings(
        media_root=acme.parent, results_uri=str(results), inline_result_limit_bytes=1024, progress_interval_s=0.5
    )
    job = job_event((acme / clip.name).as_uri())

    async def body() -> tuple[list[Any], list[Any]]:
        await publisher.publish(job)
        done = await asyncio.to_thread(pull_events, pubsub_project, "crosscheck-ocr-results", expect=1, timeout=240)
        progress = await asyncio.to_thread(pull_events, pubsub_project, "status-progress", expect=1, timeout=10)
        return done, progress

    done, progress = await with_worker(settings, pubsub_project, publisher, body)
    assert [e.type for e in done] == [EventType.OCR_COMPLETED]
    event = done[0]
    assert event.subject == job.data.job_id
    assert event.id == deterministic_event_id(job.data.job_id, "ocr", event.data.engine.name, event.data.engine.version)
    assert event.data.segments is None
    assert event.data.result_uri is not None
    stored = OcrCompleted.model_validate_json(LocalResultStore(results).get_json(event.data.result_uri))
    assert stored.segments is not None
    assert stored.stats == event.data.stats
    cer, _ = score_clip(stored.segments, truth_of(clip))
    assert cer <= 0.03
    assert progress
    assert all(p.type is EventType.OCR_PROGRESS and p.data.stage is Stage.OCR for p in progress)


async def test_redelivered_job_gives_the_same_ce_id(
    pubsub_project: str, publisher: EventPublisher, tmp_path: Path
) -> None:
    acme = tenant_folder(tmp_path / "media", linked_to=SAMPLES)
    settings = OcrSettings(media_root=acme.parent, results_uri=str(tmp_path))
    job = job_event((acme / shortest_clip().name).as_uri(), region=NO_CAPTIONS)

    async def body() -> list[Any]:
        # The same event twice is what Pub/Sub's at-least-once delivery does to a consumer.
        await publisher.publish(job)
        first = await asyncio.to_thread(pull_events, pubsub_project, "crosscheck-ocr-results", expect=1, timeout=120)
        await publisher.publish(job)
        second = await asyncio.to_thread(pull_events, pubsub_project, "crosscheck-ocr-results", expect=1, timeout=120)
        return first + second

    events = await with_worker(settings, pubsub_project, publisher, body)
    assert len(events) == 2
    assert events[0].id == events[1].id
    assert events[0].data.segments == events[1].data.segments == []
    assert events[0].data.result_uri is None


async def test_permanent_media_errors_become_failed_events_without_redelivery(
    pubsub_project: str, publisher: EventPublisher, pubsub_emulator: Any, tmp_path: Path
) -> None:
    media = tenant_folder(tmp_path / "media")  # the job events' tenant, acme
    beeb = tenant_folder(tmp_path / "media", "beeb")
    shutil.copy(shortest_clip(), beeb / "clip.mp4")
    corrupt = SAMPLES / "corrupt.mp4"
    if corrupt.is_file():
        shutil.copy(corrupt, media / "corrupt.mp4")
    else:
        (media / "corrupt.mp4").write_bytes(shortest_clip().read_bytes()[:20_000])
    if (SAMPLES / "audio_only.m4a").is_file():
        shutil.copy(SAMPLES / "audio_only.m4a", media / "audio_only.m4a")
    else:
        write_audio_only(media / "audio_only.m4a")
    # Every news clip is longer than 10 s.
    shutil.copy(news_clip(), media / "long.mp4")
    # Under the 10 s maximum: the codec, not the length, is what fails it.
    with_undecodable_stream(shortest_clip(), "video", media / "unknown_video_codec.mp4")
    settings = OcrSettings(media_root=media.parent, results_uri=str(tmp_path / "results"), max_media_duration_s=10)
    expected = {
        (media / "missing.mp4").as_uri(): (FailureReason.MEDIA_NOT_FOUND, "no media file"),
        (media / "corrupt.mp4").as_uri(): (FailureReason.MEDIA_UNREADABLE, "not readable media"),
        (media / "audio_only.m4a").as_uri(): (FailureReason.NO_VIDEO_STREAM, "no video stream"),
        (media / "long.mp4").as_uri(): (FailureReason.MEDIA_TOO_LONG, "longer than the configured maximum of 10 s"),
        (media / "unknown_video_codec.mp4").as_uri(): (FailureReason.UNSUPPORTED_CODEC, "video stream uses a codec"),
        "file:///etc/passwd": (FailureReason.MEDIA_URI_REJECTED, "outside this tenant's media folder"),
        # Another tenant's file, whatever the event says: the stage checks the tenant's area itself.
        (beeb / "clip.mp4").as_uri(): (FailureReason.MEDIA_URI_REJECTED, "outside this tenant's media folder"),
    }
    jobs = {uri: job_event(uri) for uri in expected}

    async def body() -> list[Any]:
        for job in jobs.values():
            await publisher.publish(job)
        got = await asyncio.to_thread(
            pull_events, pubsub_project, "crosscheck-ocr-results", expect=len(jobs), timeout=60
        )
        # Anything redelivered would produce a second failure event within the retry backoff (2 s).
        got += await asyncio.to_thread(pull_events, pubsub_project, "crosscheck-ocr-results", expect=1, timeout=4)
        return got

    events = await with_worker(settings, pubsub_project, publisher, body)
    by_job = {e.subject: e for e in events}
    assert len(events) == len(jobs) == len(by_job)
    for uri, (reason, words) in expected.items():
        event = by_job[jobs[uri].data.job_id]
        assert event.type is EventType.OCR_FAILED
        assert event.data.stage is Stage.OCR
        assert event.data.reason is reason, (uri, event.data)
        assert words in event.data.message
    state = pubsub_emulator.subscription_state(subscription_path(pubsub_project, SUBSCRIPTION))
    dead = pubsub_emulator.subscription_state(subscription_path(pubsub_project, "status-dead-letter"))
    # Each job delivered once and acked: no redelivery loop, nothing dead-lettered.
    n = len(jobs)
    assert (state["delivered"], state["acked"], state["backlog"], state["dead_lettered"]) == (n, n, 0, 0)
    assert dead["backlog"] == dead["delivered"] == 0
