"""The OCR worker: ``python -m captionqc.ocr`` consumes ``ocr-jobs`` until SIGTERM."""

from __future__ import annotations

import asyncio

from captionqc.ocr.service import worker_setup
from captionqc.ocr.settings import OcrSettings
from captionqc.runtime.consumer import run_worker
from captionqc.schemas import Stage


def main() -> None:
    settings = OcrSettings()
    asyncio.run(run_worker(settings, setup=worker_setup, failure_stage=Stage.OCR, threads=settings.worker_threads))


if __name__ == "__main__":
    main()
