"""The cross-check worker's resources and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from captionqc.crosscheck.checker import warm_up
from captionqc.crosscheck.service import CrosscheckService
from captionqc.crosscheck.settings import CrosscheckSettings
from captionqc.crosscheck.tables import outbox
from captionqc.runtime.consumer import Route, WorkerSetup
from captionqc.runtime.db import create_engine, ping, session_factory
from captionqc.runtime.outbox_relay import OutboxRelay
from captionqc.runtime.pubsub import EventPublisher
from captionqc.runtime.storage import result_store_from_uri


@asynccontextmanager
async def worker_setup(settings: CrosscheckSettings, publisher: EventPublisher) -> AsyncIterator[WorkerSetup]:
    engine = create_engine(settings)
    sessions = session_factory(engine)
    relay = OutboxRelay(sessions, outbox, publisher)
    warm_up()  # load the word lists once, before the first message, not inside its lease
    service = CrosscheckService(
        sessions, result_store_from_uri(settings.results_uri), settings.checker_config(), on_committed=relay.wake
    )
    relay.start()

    async def database() -> bool:
        return await ping(engine)

    async def outbox_relay() -> bool:
        return relay.running

    try:
        yield WorkerSetup(
            routes=[
                Route(sub, service.handle, max_messages=settings.max_in_flight)
                for sub in ("crosscheck-jobs", "crosscheck-ocr-results", "crosscheck-asr-results")
            ],
            readiness_checks=[database, outbox_relay],
        )
    finally:
        await relay.stop()
        await engine.dispose()
