"""The OCR and ASR workers' route: many jobs leased, a job per worker thread running, turns fair between tenants."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from captionqc.media.settings import MediaStageSettings
from captionqc.media.stage_runner import StageRunner
from captionqc.runtime.consumer import HandlerContext
from captionqc.schemas import CloudEvent, EventType, OcrCompleted, Stage

RUNNER: StageRunner[OcrCompleted] = StageRunner(Stage.OCR, "//captionqc/ocr", EventType.OCR_COMPLETED)


async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
    pass


def test_job_route_leases_more_jobs_than_it_runs_and_serves_tenants_in_turn() -> None:
    route = RUNNER.job_route("ocr-jobs", handler, MediaStageSettings(worker_threads=2, max_leased_jobs=12))
    assert (route.max_messages, route.concurrency, route.fair) == (12, 2, True)
    default = RUNNER.job_route("ocr-jobs", handler, MediaStageSettings())
    assert (default.max_messages, default.concurrency) == (16, 1)


def test_leased_jobs_cover_the_worker_threads() -> None:
    with pytest.raises(ValidationError, match="max_leased_jobs"):
        MediaStageSettings(worker_threads=4, max_leased_jobs=2)
