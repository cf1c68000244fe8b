"""``python -m captionqc.crosscheck``: run the cross-check worker until SIGTERM."""

from __future__ import annotations

import asyncio

from captionqc.crosscheck.settings import CrosscheckSettings
from captionqc.crosscheck.worker import worker_setup
from captionqc.runtime.consumer import run_worker
from captionqc.schemas import Stage


def main() -> None:
    settings = CrosscheckSettings()
    asyncio.run(run_worker(settings, setup=worker_setup, failure_stage=Stage.CROSSCHECK, threads=2))


if __name__ == "__main__":
    main()
