"""The OCR service: the ``job.requested`` handler (the edge) and the job processing it delegates to.

`process_job` is the service layer: open the media, read its captions, package the result (inline, or in the
result store when too large for one message). It is synchronous CPU and I/O work, so the handler runs it in the
runner's pool; the Cloud Run Job entrypoint calls it directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from captionqc.media.settings import ExecutionMode
from captionqc.media.source import open_media
from captionqc.media.stage_runner import StageRunner
from captionqc.ocr.dispatch import JobDispatcher, dispatcher_for
from captionqc.ocr.engine import OcrEngine, engine_for
from captionqc.ocr.settings import OcrSettings
from captionqc.ocr.stage import ProgressCallback, read_captions
from captionqc.runtime.consumer import HandlerContext, WorkerSetup
from captionqc.runtime.pubsub import EventPublisher
from captionqc.runtime.storage import ResultStore, result_store_from_uri
from captionqc.schemas import (
    CloudEvent,
    EventType,
    JobRequested,
    OcrCompleted,
    Stage,
)

SOURCE = "//captionqc/ocr"
SUBSCRIPTION = "ocr-jobs"
RUNNER: StageRunner[OcrCompleted] = StageRunner(Stage.OCR, SOURCE, EventType.OCR_COMPLETED)


def process_job(
    job: JobRequested,
    *,
    settings: OcrSettings,
    store: ResultStore,
    engine: OcrEngine,
    on_progress: ProgressCallback | None = None,
) -> OcrCompleted:
    """Read the captions of ``job``'s media; raises `PermanentMediaError` / `TransientMediaError` as classified."""
    with open_media(
        job.media.uri,
        settings.media_policy(),
        tenant=job.tenant,
        temp_dir=settings.media_temp_dir,
        timeout_s=settings.media_download_timeout_s,
    ) as path:
        outcome = read_captions(
            path, region=job.options.caption_region, settings=settings, on_progress=on_progress, engine=engine
        )
    result = OcrCompleted(
        job_id=job.job_id, tenant=job.tenant, segments=outcome.segments, engine=outcome.engine, stats=outcome.stats
    )
    return RUNNER.claim_checked(result, store, settings.inline_result_limit_bytes)


@dataclass
class OcrService:
    settings: OcrSettings
    store: ResultStore
    # None: built on first use (a dispatch-only worker never loads the models).
    engine: OcrEngine | None = None
    dispatcher: JobDispatcher | None = None

    async def handle_job_requested(self, event: CloudEvent[Any], ctx: HandlerContext) -> None:
        """``captionqc.job.requested`` → ``captionqc.ocr.completed`` (failures are mapped by the runner)."""
        await RUNNER.in_consumer(
            event,
            ctx,
            self._process,
            dispatcher=self.dispatcher,
            progress_interval_s=self.settings.progress_interval_s,
        )

    def _process(self, job: JobRequested, on_progress: Callable[[float, str], None]) -> OcrCompleted:
        engine = self.engine or engine_for(self.settings)
        return process_job(job, settings=self.settings, store=self.store, engine=engine, on_progress=on_progress)


def build_service(settings: OcrSettings, *, engine: OcrEngine | None = None) -> OcrService:
    dispatcher: JobDispatcher | None = None
    if settings.execution_mode is ExecutionMode.CLOUD_RUN_JOB:
        dispatcher = dispatcher_for(settings)
    # Load the models at start-up, not on the first job (in cloud_run_job mode this process never OCRs).
    if engine is None and dispatcher is None:
        engine = engine_for(settings)
    return OcrService(
        settings=settings, store=result_store_from_uri(settings.results_uri), engine=engine, dispatcher=dispatcher
    )


@asynccontextmanager
async def worker_setup(settings: OcrSettings, publisher: EventPublisher) -> AsyncIterator[WorkerSetup]:
    """The worker's resources for its lifetime: the engine (loaded once, off the loop) and the route."""
    service = await asyncio.to_thread(build_service, settings)
    yield WorkerSetup(routes=[RUNNER.job_route(SUBSCRIPTION, service.handle_job_requested, settings)])
