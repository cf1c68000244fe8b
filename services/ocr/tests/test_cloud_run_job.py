"""Execution mode ``cloud_run_job`` in this stage: a dispatching worker acks without reading the media (the
Cloud Run admin API is a fake: it cannot run here), and the job entrypoint runs for real, publishing to the emulator.
The dispatcher itself is tested once, in libs/media."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from captionqc.media.testing import FakeJobsClient, cloud_run_job_settings, tenant_folder
from captionqc.ocr.dispatch import JOB_ID_ENV, dispatcher_for, job_json_key
from captionqc.ocr.service import SUBSCRIPTION, OcrService, build_service
from captionqc.ocr.settings import OcrSettings
from captionqc.runtime.consumer import ConsumerRunner, Route
from captionqc.runtime.pubsub import EventPublisher, subscription_path
from captionqc.runtime.storage import LocalResultStore
from captionqc.runtime.testing.bus import job_event, pull_events
from captionqc.schemas import EventType, FailureReason, Stage, deterministic_event_id

from .scoring import SAMPLES, sample_clips, truth_of


def cloud_settings(tmp_path: Path) -> OcrSettings:
    return cloud_run_job_settings(OcrSettings, tmp_path / "results", job_name="captionqc-ocr-job")


async def test_a_dispatching_worker_acks_without_reading(
    pubsub_project: str, publisher: EventPublisher, pubsub_emulator: Any, tmp_path: Path
) -> None:
    settings = cloud_settings(tmp_path)
    assert build_service(settings).engine is None  # a dispatch-only worker never loads the models
    client = FakeJobsClient()
    service = OcrService(
        settings=settings,
        store=LocalResultStore(tmp_path / "results"),
        dispatcher=dispatcher_for(settings, client=client),
    )
    async with ConsumerRunner(
        project=pubsub_project,
        source="//captionqc/ocr",
        routes=[Route(SUBSCRIPTION, service.handle_job_requested)],
        publisher=publisher,
        failure_stage=Stage.OCR,
    ):
        await publisher.publish(job_event("gs://captionqc-media/clip.mp4"))
        for _ in range(200):
            state = pubsub_emulator.subscription_state(subscription_path(pubsub_project, SUBSCRIPTION))
            if state["acked"] == 1:
                break
            await asyncio.sleep(0.05)
    assert state["acked"] == 1
    assert len(client.requests) == 1
    # The execution publishes the result, not the dispatcher.
    assert await asyncio.to_thread(pull_events, pubsub_project, "crosscheck-ocr-results", expect=1, timeout=3) == []


@pytest.fixture
async def publisher(pubsub_project: str) -> AsyncIterator[EventPublisher]:
    pub = EventPublisher(pubsub_project)
    yield pub
    pub.close()


def run_entrypoint(job_uri: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "captionqc.ocr.job", "--job-uri", job_uri],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.slow
async def test_job_entrypoint_reads_the_job_and_publishes_the_result(pubsub_project: str, tmp_path: Path) -> None:
    clip = min(sample_clips(), key=lambda p: truth_of(p)["duration_s"])
    results = tmp_path / "results"
    store = LocalResultStore(results)
    acme = tenant_folder(tmp_path / "media", linked_to=SAMPLES)
    good = job_event((acme / clip.name).as_uri()).data
    missing = job_event((acme / "no-such-clip.mp4").as_uri()).data
    env = {
        "CAPTIONQC_OCR_GCP_PROJECT": pubsub_project,
        "CAPTIONQC_OCR_MEDIA_ROOT": str(acme.parent),
        "CAPTIONQC_OCR_RESULTS_URI": str(results),
    }
    for job in (good, missing):
        uri = store.put_json(job_json_key(job), job.model_dump_json().encode())
        done = await asyncio.to_thread(run_entrypoint, uri, {**env, JOB_ID_ENV: job.job_id})
        assert done.returncode == 0, done.stderr[-3000:]
    events = await asyncio.to_thread(pull_events, pubsub_project, "crosscheck-ocr-results", expect=2, timeout=30)
    by_job = {e.subject: e for e in events}
    completed, failed = by_job[good.job_id], by_job[missing.job_id]
    assert completed.type is EventType.OCR_COMPLETED
    assert completed.id == deterministic_event_id(
        good.job_id, "ocr", completed.data.engine.name, completed.data.engine.version
    )
    truth = truth_of(clip)
    assert [s.text for s in completed.data.segments] == [c["displayed_text"] for c in truth["captions"]]
    assert failed.type is EventType.OCR_FAILED
    assert failed.data.reason is FailureReason.MEDIA_NOT_FOUND
    assert failed.id == deterministic_event_id(missing.job_id, "ocr", "failed")
