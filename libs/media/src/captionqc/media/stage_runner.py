"""What the OCR and ASR stages share around their own work: one job, run with throttled progress, in the consumer
or in a Cloud Run Job execution, ending in the stage's completed event (or, in an execution, its failed event).

A stage supplies only ``work(job, on_progress) -> result``; both places run it on a worker thread, so the event
loop keeps extending the message's lease and publishing progress. The completed event's ``ce-id`` is
deterministic (job id, stage, engine name and version), so a redelivered job yields the same id and downstream
drops the duplicate.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from captionqc.media.cloud_run_job import JobDispatcher, job_id_env
from captionqc.media.settings import MediaStageSettings
from captionqc.runtime.consumer import Handler, HandlerContext, Route
from captionqc.runtime.errors import PermanentError, TransientError
from captionqc.runtime.logs import configure_logging
from captionqc.runtime.pubsub import EventPublisher
from captionqc.runtime.stage_events import ProgressRelay, stage_failed_event
from captionqc.runtime.storage import ResultStore, result_store_from_uri
from captionqc.schemas import (
    AsrCompleted,
    CloudEvent,
    EventType,
    JobRequested,
    OcrCompleted,
    Stage,
    deterministic_event_id,
    new_event,
)

ResultT = TypeVar("ResultT", bound=OcrCompleted | AsrCompleted)
# The stage's own work, run on a worker thread: the job and a progress callback in, the completed payload out.
Work = Callable[[JobRequested, Callable[[float, str], None]], ResultT]


@dataclass(frozen=True)
class StageRunner(Generic[ResultT]):
    stage: Stage
    source: str
    completed_type: EventType

    def job_route(self, subscription: str, handler: Handler, settings: MediaStageSettings) -> Route:
        """The worker's route for ``job.requested``: up to ``max_leased_jobs`` leased, a job per worker thread
        running, turns fair between tenants; each message keeps its lease for up to ``max_lease_s``."""
        return Route(
            subscription,
            handler,
            max_messages=settings.max_leased_jobs,
            concurrency=settings.worker_threads,
            fair=True,
            max_lease_s=settings.max_lease_s,
        )

    def claim_checked(self, result: ResultT, store: ResultStore, limit_bytes: int) -> ResultT:
        """``result`` as it is when its JSON fits in ``limit_bytes``; else stored whole and sent by its URI."""
        body = result.model_dump_json().encode()
        if len(body) <= limit_bytes:
            return result
        # The key depends only on the job and engine, so a redelivered job overwrites the same object.
        engine_tag = re.sub(r"[^A-Za-z0-9._-]", "-", f"{result.engine.name}-{result.engine.version}")
        uri = store.put_json(f"{self.stage.value}/{result.tenant}/{result.job_id}/{engine_tag}.json", body)
        logging.getLogger(f"captionqc.{self.stage.value}.service").info(
            "result stored by claim check", extra={"bytes": len(body), "result_uri": uri}
        )
        # by_reference returns the same model class; mypy sees only the bound union through the TypeVar.
        return cast(ResultT, result.by_reference(uri))

    def completed_event(self, result: ResultT) -> CloudEvent[ResultT]:
        event_id = deterministic_event_id(result.job_id, self.stage.value, result.engine.name, result.engine.version)
        return new_event(self.completed_type, result, source=self.source, event_id=event_id)

    def _relay(
        self, job: JobRequested, publish: Callable[[CloudEvent[Any]], Awaitable[object]], interval_s: float
    ) -> ProgressRelay:
        return ProgressRelay(asyncio.get_running_loop(), publish, job, interval_s, self.stage, self.source)

    async def in_consumer(
        self,
        event: CloudEvent[Any],
        ctx: HandlerContext,
        work: Work[ResultT],
        *,
        dispatcher: JobDispatcher | None,
        progress_interval_s: float,
    ) -> None:
        """``captionqc.job.requested`` → the completed event; permanent failures are mapped by the runner."""
        log = logging.getLogger(f"captionqc.{self.stage.value}.service")
        job = event.data
        if not isinstance(job, JobRequested):
            log.warning("ignoring %s on %s", event.type.value, ctx.subscription)
            return
        if dispatcher is not None:
            # Long media runs as a Cloud Run Job execution, which publishes the result itself; ack once started.
            execution = await ctx.run_in_pool(dispatcher.dispatch, job)
            log.info("dispatched to a Cloud Run Job", extra={"execution": execution})
            return
        relay = self._relay(job, ctx.publish, progress_interval_s)
        try:
            result = await ctx.run_in_pool(work, job, relay)
        finally:
            await relay.drain()
        await ctx.publish(self.completed_event(result))

    async def in_execution(
        self, job: JobRequested, publisher: EventPublisher, work: Work[ResultT], *, progress_interval_s: float
    ) -> None:
        """In a Cloud Run Job execution there is no runner: a permanent failure is published here, as the runner
        would (same ``ce-id``), and the execution ends normally; a transient one propagates."""
        relay = self._relay(job, publisher.publish, progress_interval_s)
        try:
            result = await asyncio.to_thread(work, job, relay)
        except PermanentError as exc:
            log = logging.getLogger(f"captionqc.{self.stage.value}.job")
            log.warning("permanent failure: %s", exc.message, extra={"reason": exc.reason.value})
            failed = stage_failed_event(job.job_id, job.tenant, self.stage, exc.reason, exc.message, source=self.source)
            await publisher.publish(failed)
            return
        finally:
            await relay.drain()
        await publisher.publish(self.completed_event(result))


SettingsT = TypeVar("SettingsT", bound=MediaStageSettings)


def execution_main(
    argv: Sequence[str] | None,
    stage: Stage,
    settings_class: Callable[[], SettingsT],
    run: Callable[[JobRequested, SettingsT, EventPublisher], Coroutine[Any, Any, None]],
) -> int:
    """``python -m captionqc.<stage>.job --job-uri <uri>``: 0 when the job is done (completed or failed), 1 on a
    transient failure (Cloud Run retries the task), 2 when the stored job is not the one the dispatcher named."""
    log = logging.getLogger(f"captionqc.{stage.value}.job")
    parser = argparse.ArgumentParser(prog=f"python -m captionqc.{stage.value}.job")
    parser.add_argument("--job-uri", required=True, help="where the dispatcher stored the job.requested payload")
    args = parser.parse_args(argv)
    settings = settings_class()
    configure_logging(settings.service_name, settings.gcp_project, settings.log_level)
    store = result_store_from_uri(settings.results_uri)
    job = JobRequested.model_validate_json(store.get_json(args.job_uri))
    expected = os.environ.get(job_id_env(stage.value))
    if expected and expected != job.job_id:
        log.error("job id mismatch: %s in the environment, %s in %s", expected, job.job_id, args.job_uri)
        return 2
    publisher = EventPublisher(settings.gcp_project, max_message_bytes=settings.max_message_bytes)
    try:
        asyncio.run(run(job, settings, publisher))
    except TransientError as exc:
        log.warning("transient failure, the task will be retried: %s", exc)
        return 1
    finally:
        publisher.close()
    return 0
