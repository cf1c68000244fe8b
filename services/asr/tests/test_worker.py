"""The ASR worker end to end on the real Pub/Sub emulator: job.requested in, asr.completed / asr.failed out."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from captionqc.asr.service import SUBSCRIPTION, worker_setup
from captionqc.asr.settings import AsrSettings
from captionqc.asr.wer import word_error_rate
from captionqc.media.testing import tenant_folder, with_undecodable_stream
from captionqc.runtime.consumer import ConsumerRunner
from captionqc.runtime.pubsub import EventPublisher, subscription_path
from captionqc.runtime.storage import LocalResultStore
from captionqc.runtime.testing.bus import job_event, pull_events
from captionqc.schemas import AsrCompleted, EventType, FailureReason, Stage, deterministic_event_id

from .conftest import SAMPLE_CLIPS, SAMPLES, SampleClip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SAMPLE_CLIPS, reason="no sample clips with ground truth under samples/"),
]
T = TypeVar("T")
RESULTS = "crosscheck-asr-results"


@pytest.fixture
async def publisher(pubsub_project: str) -> AsyncIterator[EventPublisher]:
    pub = EventPublisher(pubsub_project)
    yield pub
    pub.close()


async def with_worker(
    settings: AsrSettings, project: str, publisher: EventPublisher, body: Callable[[], Awaitable[T]]
) -> T:
    """Run the ASR worker (its real setup and the real consumer runner) while ``body`` runs."""
    async with (
        worker_setup(settings, publisher) as setup,
        ConsumerRunner(
            project=project,
            source="//captionqc/asr",
            routes=setup.routes,
            publisher=publisher,
            failure_stage=Stage.ASR,
            threads=settings.worker_threads,
            grace_s=5,
        ),
    ):
        return await body()


def shortest_clip() -> SampleClip:
    return min(SAMPLE_CLIPS, key=lambda clip: clip.truth["duration_s"])


async def test_job_is_transcribed_redelivery_keeps_the_ce_id_and_large_results_use_a_claim_check(
    pubsub_project: str, publisher: EventPublisher, tmp_path: Path
) -> None:
    clip = shortest_clip()
    results = tmp_path / "results"
    # A 1 KB inline limit forces the claim check with real words.
    acme = tenant_folder(tmp_path / "media", linked_to=SAMPLES)
    settings = AsrSettings(
        media_root=acme.parent, results_uri=str(results), inline_result_limit_bytes=1024, progress_interval_s=0.5
    )
    job = job_event((acme / clip.media.name).as_uri())

    async def body() -> tuple[list[Any], list[Any]]:
        # The same event twice is what Pub/Sub's at-least-once delivery does to a consumer.
        await publisher.publish(job)
        first = await asyncio.to_thread(pull_events, pubsub_project, RESULTS, expect=1, timeout=180)
        await publisher.publish(job)
        second = await asyncio.to_thread(pull_events, pubsub_project, RESULTS, expect=1, timeout=180)
        progress = await asyncio.to_thread(pull_events, pubsub_project, "status-progress", expect=2, timeout=10)
        return first + second, progress

    done, progress = await with_worker(settings, pubsub_project, publisher, body)
    assert [e.type for e in done] == [EventType.ASR_COMPLETED, EventType.ASR_COMPLETED]
    event = done[0]
    assert event.subject == job.data.job_id
    assert event.id == done[1].id
    assert event.id == deterministic_event_id(job.data.job_id, "asr", event.data.engine.name, event.data.engine.version)
    assert event.data.words is None
    assert event.data.result_uri is not None
    stored = AsrCompleted.model_validate_json(LocalResultStore(results).get_json(event.data.result_uri))
    assert stored.words
    # Both deliveries wrote the same key: the stored result is the later one.
    assert stored.stats in [e.data.stats for e in done]
    assert word_error_rate(clip.spoken_text, " ".join(w.word for w in stored.words)) <= 0.15
    assert progress
    assert all(p.type is EventType.ASR_PROGRESS and p.data.stage is Stage.ASR for p in progress)


async def test_small_result_travels_inline(pubsub_project: str, publisher: EventPublisher, tmp_path: Path) -> None:
    clip = shortest_clip()
    acme = tenant_folder(tmp_path / "media", linked_to=SAMPLES)
    settings = AsrSettings(media_root=acme.parent, results_uri=str(tmp_path / "results"))
    job = job_event((acme / clip.media.name).as_uri())

    async def body() -> list[Any]:
        await publisher.publish(job)
        return await asyncio.to_thread(pull_events, pubsub_project, RESULTS, expect=1, timeout=180)

    [event] = await with_worker(settings, pubsub_project, publisher, body)
    assert event.data.result_uri is None
    assert word_error_rate(clip.spoken_text, " ".join(w.word for w in event.data.words)) <= 0.15
    # The speed itself is bench/stages.py's business; here only that the reported figure is the stated ratio.
    stats = event.data.stats
    assert stats.real_time_factor == pytest.approx(stats.processing_s / stats.media_duration_s)


async def test_permanent_media_errors_become_failed_events_without_redelivery(
    pubsub_project: str, publisher: EventPublisher, pubsub_emulator: Any, tmp_path: Path
) -> None:
    media = tenant_folder(tmp_path / "media")  # the job events' tenant, acme
    beeb = tenant_folder(tmp_path / "media", "beeb")
    clip = shortest_clip()
    shutil.copy(clip.media, beeb / "clip.mp4")
    if (SAMPLES / "corrupt.mp4").is_file():
        shutil.copy(SAMPLES / "corrupt.mp4", media / "corrupt.mp4")
    else:
        (media / "corrupt.mp4").write_bytes(clip.media.read_bytes()[:20_000])
    silent = SAMPLES / "silent_video.mp4"
    if not silent.is_file():
        pytest.skip("samples/silent_video.mp4 is not committed")
    shutil.copy(silent, media / "silent_video.mp4")
    shutil.copy(clip.media, media / "long.mp4")
    # Under the 10 s maximum: the codec, not the length, is what fails it.
    with_undecodable_stream(SAMPLES / "audio_only.m4a", "audio", media / "unknown_audio_codec.mp4")
    # Every sample clip with speech is longer than 10 s.
    settings = AsrSettings(media_root=media.parent, results_uri=str(tmp_path / "results"), max_media_duration_s=10)
    expected = {
        (media / "missing.mp4").as_uri(): (FailureReason.MEDIA_NOT_FOUND, "no media file"),
        (media / "corrupt.mp4").as_uri(): (FailureReason.MEDIA_UNREADABLE, "not readable media"),
        (media / "silent_video.mp4").as_uri(): (FailureReason.NO_AUDIO_STREAM, "no audio stream"),
        (media / "long.mp4").as_uri(): (FailureReason.MEDIA_TOO_LONG, "longer than the configured maximum of 10 s"),
        (media / "unknown_audio_codec.mp4").as_uri(): (FailureReason.UNSUPPORTED_CODEC, "audio stream uses a codec"),
        "file:///etc/passwd": (FailureReason.MEDIA_URI_REJECTED, "outside this tenant's media folder"),
        # Another tenant's file, whatever the event says: the stage checks the tenant's area itself.
        (beeb / "clip.mp4").as_uri(): (FailureReason.MEDIA_URI_REJECTED, "outside this tenant's media folder"),
    }
    jobs = {uri: job_event(uri) for uri in expected}

    async def body() -> list[Any]:
        for job in jobs.values():
            await publisher.publish(job)
        got = await asyncio.to_thread(pull_events, pubsub_project, RESULTS, expect=len(jobs), timeout=60)
        # Anything redelivered would produce a second failure event within the retry backoff.
        got += await asyncio.to_thread(pull_events, pubsub_project, RESULTS, expect=1, timeout=4)
        return got

    events = await with_worker(settings, pubsub_project, publisher, body)
    by_job = {e.subject: e for e in events}
    assert len(events) == len(jobs) == len(by_job)
    for uri, (reason, words) in expected.items():
        event = by_job[jobs[uri].data.job_id]
        assert event.type is EventType.ASR_FAILED
        assert event.data.stage is Stage.ASR
        assert event.data.reason is reason, (uri, event.data)
        assert words in event.data.message, (uri, event.data.message)
    state = pubsub_emulator.subscription_state(subscription_path(pubsub_project, SUBSCRIPTION))
    # Each job delivered once and acked: no redelivery loop, nothing dead-lettered.
    n = len(jobs)
    assert (state["delivered"], state["acked"], state["backlog"], state["dead_lettered"]) == (n, n, 0, 0)
