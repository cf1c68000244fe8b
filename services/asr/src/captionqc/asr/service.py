"""The ASR service: the ``job.requested`` handler (the edge) and the job processing it delegates to.

`process_job` is the service layer: open the media by URI, transcribe it, and package the result (inline, or in
the result store when too large for one message). It is blocking CPU and I/O work, so the handler runs it in the
runner's thread pool; with ``pool_size > 1`` the engine work itself runs in the service's worker processes
(`ProcessPoolEngine`, whose workers each load the engine once).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from captionqc.asr.dispatch import JobDispatcher, dispatcher_for
from captionqc.asr.engines import AsrEngine, EngineSpec, build_engine
from captionqc.asr.pool import ProcessPoolEngine
from captionqc.asr.settings import AsrSettings
from captionqc.asr.stage import transcribe
from captionqc.media.settings import ExecutionMode
from captionqc.media.source import open_media
from captionqc.media.stage_runner import StageRunner
from captionqc.runtime.consumer import HandlerContext, WorkerSetup
from captionqc.runtime.pubsub import EventPublisher
from captionqc.runtime.storage import ResultStore, result_store_from_uri
from captionqc.schemas import (
    AsrCompleted,
    CloudEvent,
    EventType,
    JobRequested,
    Stage,
)

SOURCE = "//captionqc/asr"
SUBSCRIPTION = "asr-jobs"
RUNNER: StageRunner[AsrCompleted] = StageRunner(Stage.ASR, SOURCE, EventType.ASR_COMPLETED)


def process_job(
    job: JobRequested,
    *,
    settings: AsrSettings,
    store: ResultStore,
    engine: AsrEngine,
    on_progress: Callable[[float, str], None] | None = None,
) -> AsrCompleted:
    """Transcribe ``job``'s media; raises `PermanentMediaError` / `TransientMediaError` as classified."""
    with open_media(
        job.media.uri,
        settings.media_policy(),
        tenant=job.tenant,
        temp_dir=settings.media_temp_dir,
        timeout_s=settings.media_download_timeout_s,
    ) as path:
        outcome = transcribe(path, language=job.language, settings=settings, on_progress=on_progress, engine=engine)
    result = AsrCompleted(
        job_id=job.job_id,
        tenant=job.tenant,
        words=outcome.words,
        language=job.language,
        engine=outcome.engine,
        stats=outcome.stats,
    )
    return RUNNER.claim_checked(result, store, settings.inline_result_limit_bytes)


@dataclass
class AsrService:
    settings: AsrSettings
    store: ResultStore
    # None only in a dispatch-only worker (cloud_run_job mode), which never loads a model.
    engine: AsrEngine | None = None
    dispatcher: JobDispatcher | None = None

    async def handle_job_requested(self, event: CloudEvent[Any], ctx: HandlerContext) -> None:
        """``captionqc.job.requested`` → ``captionqc.asr.completed`` (failures are mapped by the runner)."""
        await RUNNER.in_consumer(
            event,
            ctx,
            self._process,
            dispatcher=self.dispatcher,
            progress_interval_s=self.settings.progress_interval_s,
        )

    def _process(self, job: JobRequested, on_progress: Callable[[float, str], None]) -> AsrCompleted:
        if self.engine is None:
            raise RuntimeError("this ASR worker only dispatches Cloud Run Jobs; it has no engine")
        return process_job(job, settings=self.settings, store=self.store, engine=self.engine, on_progress=on_progress)


def build_engine_for_service(settings: AsrSettings) -> AsrEngine:
    """The engine for the worker's lifetime: in this process, or on ``pool_size`` worker processes."""
    spec = EngineSpec.from_settings(settings)
    if settings.pool_size > 1:
        pool = ProcessPoolEngine(spec, settings.pool_size)
        _ = pool.info  # start the workers and load their engines now, not on the first job
        return pool
    return build_engine(spec)


def build_service(settings: AsrSettings, *, dispatcher: JobDispatcher | None = None) -> AsrService:
    if dispatcher is None and settings.execution_mode is ExecutionMode.CLOUD_RUN_JOB:
        dispatcher = dispatcher_for(settings)
    # Load the model at start-up, not on the first job (in cloud_run_job mode this process never transcribes).
    engine = None if dispatcher is not None else build_engine_for_service(settings)
    return AsrService(
        settings=settings, store=result_store_from_uri(settings.results_uri), engine=engine, dispatcher=dispatcher
    )


@asynccontextmanager
async def worker_setup(settings: AsrSettings, publisher: EventPublisher) -> AsyncIterator[WorkerSetup]:
    """The worker's resources for its lifetime: the engine (loaded once, off the loop) and the route."""
    service = await asyncio.to_thread(build_service, settings)
    engine = service.engine
    try:
        yield WorkerSetup(routes=[RUNNER.job_route(SUBSCRIPTION, service.handle_job_requested, settings)])
    finally:
        if isinstance(engine, ProcessPoolEngine):
            await asyncio.to_thread(engine.close)
