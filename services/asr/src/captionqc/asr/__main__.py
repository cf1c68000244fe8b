"""The ASR worker: ``python -m captionqc.asr`` consumes ``asr-jobs`` until SIGTERM."""

from __future__ import annotations

import asyncio

from captionqc.asr.service import worker_setup
from captionqc.asr.settings import AsrSettings
from captionqc.runtime.consumer import run_worker
from captionqc.schemas import Stage


def main() -> None:
    settings = AsrSettings()
    asyncio.run(run_worker(settings, setup=worker_setup, failure_stage=Stage.ASR, threads=settings.worker_threads))


if __name__ == "__main__":
    main()
