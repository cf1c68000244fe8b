"""Inbox and outbox against a real PostgreSQL (embedded) and the real emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from captionqc.runtime.consumer import ConsumerRunner, HandlerContext, Route
from captionqc.runtime.db import session_factory, unit_of_work
from captionqc.runtime.messaging_tables import add_to_outbox, claim_event, inbox_table, outbox_table
from captionqc.runtime.outbox_relay import OutboxRelay
from captionqc.runtime.pubsub import EventPublisher
from captionqc.runtime.testing.bus import pull_messages
from captionqc.schemas import CloudEvent, Stage

from .helpers import job_requested
from .test_consumer import wait_for

SCHEMA = "runtime_test"


class Tables:
    def __init__(self) -> None:
        self.metadata = MetaData(schema=SCHEMA)
        self.inbox: Table = inbox_table(self.metadata)
        self.outbox: Table = outbox_table(self.metadata)


@pytest.fixture
async def db(
    fresh_database: Any,
) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession], Tables]]:
    url = await fresh_database()
    engine = create_async_engine(url)
    tables = Tables()
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
        await conn.run_sync(tables.metadata.create_all)
    yield engine, session_factory(engine), tables
    await engine.dispose()


async def test_redelivered_event_is_processed_once(pubsub_project: str, db: Any) -> None:
    _engine, sessions, tables = db
    effects: list[str] = []
    seen: list[str] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        seen.append(event.id)
        async with unit_of_work(sessions) as session:
            if await claim_event(session, tables.inbox, "ocr", event.source, event.id):
                effects.append(event.id)

    publisher = EventPublisher(pubsub_project)
    event = job_requested()
    # The same event twice: what Pub/Sub's at-least-once delivery can do.
    await publisher.publish(event)
    await publisher.publish(event)
    runner = ConsumerRunner(
        project=pubsub_project,
        source="//t",
        routes=[Route("ocr-jobs", handler)],
        publisher=publisher,
        failure_stage=Stage.OCR,
    )
    await runner.start()
    try:
        await wait_for(lambda: len(seen) == 2)
    finally:
        await runner.stop()
        publisher.close()
    assert effects == [event.id]


async def test_inbox_tells_events_apart_by_source_and_id(db: Any) -> None:
    """CloudEvents: an event is identified by (source, id). Another producer's id must not silence this one."""
    _engine, sessions, tables = db
    claims = [("//captionqc/gateway", "e-1"), ("//upstream/mallory", "e-1"), ("//captionqc/gateway", "e-1")]
    results = []
    for source, event_id in claims:
        async with unit_of_work(sessions) as session:
            results.append(await claim_event(session, tables.inbox, "ocr", source, event_id))
    async with unit_of_work(sessions) as session:
        other_consumer = await claim_event(session, tables.inbox, "asr", "//captionqc/gateway", "e-1")
    assert results == [True, True, False]
    assert other_consumer


async def test_outbox_published_once_and_marked(pubsub_project: str, db: Any) -> None:
    _engine, sessions, tables = db
    publisher = EventPublisher(pubsub_project)
    events = [job_requested() for _ in range(3)]
    async with unit_of_work(sessions) as session:
        for event in events:
            await add_to_outbox(session, tables.outbox, event)
        await add_to_outbox(session, tables.outbox, events[0])  # same ce-id queued twice → kept once
    relay = OutboxRelay(sessions, tables.outbox, publisher, poll_interval_s=0.1)
    relay.start()
    try:
        got = await asyncio.to_thread(pull_messages, pubsub_project, "ocr-jobs", expect=3)
    finally:
        # The relay marks its rows in the transaction that claimed them, which commits just after the publish
        # returns, so a subscriber can hold the messages before the marks are visible; stop() awaits that pass.
        await relay.stop()
        publisher.close()
    async with sessions() as session:
        unsent = await session.scalar(
            select(func.count()).select_from(tables.outbox).where(tables.outbox.c.published_at.is_(None))
        )
    assert sorted(m.attributes["ce-id"] for m in got) == sorted(e.id for e in events)
    assert unsent == 0


async def test_rolled_back_transaction_publishes_nothing(pubsub_project: str, db: Any) -> None:
    _engine, sessions, tables = db
    with pytest.raises(RuntimeError):
        async with unit_of_work(sessions) as session:
            await add_to_outbox(session, tables.outbox, job_requested())
            raise RuntimeError("business rule failed after the event was queued")
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(tables.outbox)) == 0


async def test_relay_killed_between_publish_and_mark_republishes_same_ce_id(pubsub_project: str, db: Any) -> None:
    _engine, sessions, tables = db
    publisher = EventPublisher(pubsub_project)
    event = job_requested()
    async with unit_of_work(sessions) as session:
        await add_to_outbox(session, tables.outbox, event)

    class CrashAfterPublish(Exception):
        pass

    # First relay: publishes, then "dies" before its transaction marking the row commits.
    relay = OutboxRelay(sessions, tables.outbox, publisher)
    original = publisher.publish_raw

    async def publish_then_crash(topic: str, data: bytes, attributes: Any) -> str:
        await original(topic, data, attributes)
        raise CrashAfterPublish

    publisher.publish_raw = publish_then_crash  # type: ignore[method-assign]
    await relay.publish_pending()  # the exception is per row: the row stays unsent
    publisher.publish_raw = original  # type: ignore[method-assign]

    # A restarted relay publishes it again.
    relay2 = OutboxRelay(sessions, tables.outbox, publisher, poll_interval_s=0.1)
    relay2.start()
    try:
        got = await asyncio.to_thread(pull_messages, pubsub_project, "ocr-jobs", expect=2)
    finally:
        await relay2.stop()
        publisher.close()
    assert [m.attributes["ce-id"] for m in got] == [event.id, event.id]
    async with sessions() as session:
        row = (await session.execute(select(tables.outbox.c.published_at, tables.outbox.c.publish_attempts))).one()
    assert row.published_at is not None
    assert row.publish_attempts == 1


async def test_outbox_carries_the_writers_trace_context(pubsub_project: str, db: Any) -> None:
    from opentelemetry import trace

    _engine, sessions, tables = db
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /v1/jobs") as span:
        async with unit_of_work(sessions) as session:
            await add_to_outbox(session, tables.outbox, job_requested())
        trace_id = f"{span.get_span_context().trace_id:032x}"
    async with sessions() as session:
        attributes = await session.scalar(select(tables.outbox.c.attributes))
    assert attributes["traceparent"].split("-")[1] == trace_id


async def test_outbox_never_stores_a_credential(db: Any) -> None:
    _engine, sessions, tables = db
    received = job_requested().model_copy(update={"extensions": {"authorization": "Bearer secret-token"}})
    async with unit_of_work(sessions) as session:
        await add_to_outbox(session, tables.outbox, received)
    async with sessions() as session:
        attributes = await session.scalar(select(tables.outbox.c.attributes))
    assert attributes["ce-id"] == received.id
    assert "authorization" not in attributes
