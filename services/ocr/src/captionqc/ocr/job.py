"""Cloud Run Job entrypoint: ``python -m captionqc.ocr.job --job-uri <uri of the job JSON>``.

Runs the same stage code as the consumer and publishes the result itself: ``ocr.completed``, or ``ocr.failed``
for a permanent failure (exit 0 either way: the job is done). A transient failure exits 1, so Cloud Run retries
the task within the job's ``max_retries``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from captionqc.media.stage_runner import execution_main
from captionqc.ocr.engine import engine_for
from captionqc.ocr.service import RUNNER, process_job
from captionqc.ocr.settings import OcrSettings
from captionqc.runtime.pubsub import EventPublisher
from captionqc.runtime.storage import result_store_from_uri
from captionqc.schemas import JobRequested, OcrCompleted, Stage


async def run_job(job: JobRequested, settings: OcrSettings, publisher: EventPublisher) -> None:
    store = result_store_from_uri(settings.results_uri)

    def work(job: JobRequested, on_progress: Callable[[float, str], None]) -> OcrCompleted:
        engine = engine_for(settings)
        return process_job(job, settings=settings, store=store, engine=engine, on_progress=on_progress)

    await RUNNER.in_execution(job, publisher, work, progress_interval_s=settings.progress_interval_s)


def main(argv: Sequence[str] | None = None) -> int:
    return execution_main(argv, Stage.OCR, OcrSettings, run_job)


if __name__ == "__main__":
    sys.exit(main())
