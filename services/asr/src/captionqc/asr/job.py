"""Cloud Run Job entrypoint: ``python -m captionqc.asr.job --job-uri <uri of the job JSON>``.

Runs the same stage code as the consumer and publishes the result itself: ``asr.completed``, or ``asr.failed``
for a permanent failure (exit 0 either way: the job is done). A transient failure exits 1, so Cloud Run retries
the task within the job's ``max_retries``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from captionqc.asr.pool import ProcessPoolEngine
from captionqc.asr.service import RUNNER, build_engine_for_service, process_job
from captionqc.asr.settings import AsrSettings
from captionqc.media.stage_runner import execution_main
from captionqc.runtime.pubsub import EventPublisher
from captionqc.runtime.storage import result_store_from_uri
from captionqc.schemas import AsrCompleted, JobRequested, Stage


async def run_job(job: JobRequested, settings: AsrSettings, publisher: EventPublisher) -> None:
    store = result_store_from_uri(settings.results_uri)

    def work(job: JobRequested, on_progress: Callable[[float, str], None]) -> AsrCompleted:
        engine = build_engine_for_service(settings)
        try:
            return process_job(job, settings=settings, store=store, engine=engine, on_progress=on_progress)
        finally:
            if isinstance(engine, ProcessPoolEngine):
                engine.close()

    await RUNNER.in_execution(job, publisher, work, progress_interval_s=settings.progress_interval_s)


def main(argv: Sequence[str] | None = None) -> int:
    return execution_main(argv, Stage.ASR, AsrSettings, run_job)


if __name__ == "__main__":
    sys.exit(main())
