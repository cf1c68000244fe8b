"""Cloud Run Job entrypoint: ``python -m captionqc.ocr.job --job-uri <uri of the job JSON>``.

Runs the same stage code as the consumer and publishes the result itself: ``ocr.completed``, or ``ocr.failed``
for a permanent failure (exit 0 either way: the job is done). A transient failure exits 1, so Cloud Run retries
the task within the job's ``max_retries``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from captionqc.media.storage import result_store_from_uri
from captionqc.ocr.dispatch import JOB_ID_ENV
from captionqc.ocr.engine import engine_for
from captionqc.ocr.service import SOURCE, completed_event, failed_event, process_job
from captionqc.ocr.settings import OcrSettings
from captionqc.runtime.errors import PermanentError, TransientError
from captionqc.runtime.logs import configure_logging
from captionqc.runtime.pubsub import EventPublisher
from captionqc.runtime.stage_events import ProgressRelay
from captionqc.schemas import JobRequested, Stage

log = logging.getLogger("captionqc.ocr.job")


async def run_job(job: JobRequested, settings: OcrSettings, publisher: EventPublisher) -> None:
    store = result_store_from_uri(settings.results_uri)
    relay = ProgressRelay(
        asyncio.get_running_loop(), publisher.publish, job, settings.progress_interval_s, Stage.OCR, SOURCE
    )
    try:
        engine = await asyncio.to_thread(engine_for, settings)
        result = await asyncio.to_thread(
            lambda: process_job(job, settings=settings, store=store, engine=engine, on_progress=relay)
        )
    except PermanentError as exc:
        log.warning("permanent failure: %s", exc.message, extra={"reason": exc.reason.value})
        await publisher.publish(failed_event(job, exc.reason, exc.message))
        return
    finally:
        await relay.drain()
    await publisher.publish(completed_event(result))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m captionqc.ocr.job")
    parser.add_argument("--job-uri", required=True, help="where the dispatcher stored the job.requested payload")
    args = parser.parse_args(argv)
    settings = OcrSettings()
    configure_logging(settings.service_name, settings.gcp_project, settings.log_level)
    store = result_store_from_uri(settings.results_uri)
    job = JobRequested.model_validate_json(store.get_json(args.job_uri))
    expected = os.environ.get(JOB_ID_ENV)
    if expected and expected != job.job_id:
        log.error("job id mismatch: %s in the environment, %s in %s", expected, job.job_id, args.job_uri)
        return 2
    publisher = EventPublisher(settings.gcp_project)
    try:
        asyncio.run(run_job(job, settings, publisher))
    except TransientError as exc:
        log.warning("transient failure, the task will be retried: %s", exc)
        return 1
    finally:
        publisher.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
