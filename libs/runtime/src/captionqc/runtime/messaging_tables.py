"""Inbox and outbox tables, declared per service schema (each service migrates its own with Alembic).

- **inbox**: events a consumer has processed, keyed by (source, id) as CloudEvents defines an event's identity,
  written in the handler's transaction, so a redelivered event is a no-op. Keyed on the id alone, one producer's
  id could silence another's event (a forged ``job.requested`` reusing a genuine ``ce-id``).
- **outbox**: events that must leave with a state change, written in the same transaction as the change; the
  relay publishes them after commit and marks them sent. A crash between publish and mark republishes the same
  ``ce-id``, which consumers dedupe through their inbox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from captionqc.runtime.pubsub import without_secrets
from captionqc.runtime.tracing import inject_trace_context
from captionqc.schemas import EVENT_TOPICS, CloudEvent, to_pubsub


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(100), nullable=False),
        # ce-source; '' only on rows written before the column existed.
        Column("source", String(500), nullable=False, server_default=""),
        Column("event_id", String(200), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "source", "event_id", name="inbox_pkey"),
    )


def outbox_table(metadata: MetaData) -> Table:
    table = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", String(200), nullable=False, unique=True),
        Column("topic", String(255), nullable=False),
        Column("data", LargeBinary, nullable=False),
        Column("attributes", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("publish_attempts", Integer, nullable=False, server_default=text("0")),
    )
    Index("outbox_unpublished_idx", table.c.id, postgresql_where=table.c.published_at.is_(None))
    return table


async def claim_event(session: AsyncSession, inbox: Table, consumer: str, source: str, event_id: str) -> bool:
    """Record that ``consumer`` processes the event ``(source, event_id)`` now; False if it already did (a
    redelivery)."""
    stmt = (
        pg_insert(inbox)
        .values(consumer=consumer, source=source, event_id=event_id)
        .on_conflict_do_nothing(index_elements=["consumer", "source", "event_id"])
        .returning(inbox.c.event_id)
    )
    return (await session.execute(stmt)).first() is not None


async def add_to_outbox(
    session: AsyncSession, outbox: Table, event: CloudEvent[Any], *, topic: str | None = None
) -> None:
    """Queue ``event`` in the caller's transaction, with the current trace context, for the relay to publish.

    The same ``ce-id`` queued twice is kept once: re-running a handler cannot publish two different copies.
    """
    data, attributes = to_pubsub(event)
    # An event built from a received one may still hold its publisher's credential: it is not stored, ever.
    attributes = without_secrets(attributes)
    inject_trace_context(attributes)
    stmt = (
        pg_insert(outbox)
        .values(
            event_id=event.id,
            topic=topic or EVENT_TOPICS[event.type],
            data=data,
            attributes=attributes,
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    await session.execute(stmt)


__all__ = ["add_to_outbox", "claim_event", "inbox_table", "outbox_table"]
