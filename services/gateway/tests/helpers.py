"""Waiting for what the gateway wrote, bounded in time (reading the emulator: `captionqc.runtime.testing.bus`)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from captionqc.gateway.tables import idempotency_keys, jobs, outbox
from captionqc.runtime.pubsub import subscription_path, topic_path
from captionqc.runtime.tenants import Tenant, add_tenant, update_tenant
from captionqc.schemas import CloudEvent, EventType, JobRequested, MediaRef, TopicName, new_event, to_pubsub


def job_request(
    tenant: str = "acme",
    *,
    job_id: str | None = None,
    media_uri: str = "gs://broadcast-media/news/0612.mp4",
    event_id: str | None = None,
) -> CloudEvent[JobRequested]:
    """A ``job.requested`` as an upstream system publishes it today."""
    payload = JobRequested(
        job_id=job_id or str(uuid.uuid4()),
        tenant=tenant,
        media=MediaRef(uri=media_uri),
        requested_at=datetime.now(UTC),
    )
    event = new_event(EventType.JOB_REQUESTED, payload, source="//newsroom/playout")
    return event.model_copy(update={"id": event_id}) if event_id else event


def publish_intake(
    project: str, event: CloudEvent[Any], authorization: str | None, *, structured: bool = False
) -> None:
    """Publish on the intake topic with the official client, as an upstream publisher does (blocking)."""
    data, attributes = to_pubsub(event)
    if structured:
        envelope = {
            "specversion": "1.0",
            "id": event.id,
            "source": event.source,
            "type": event.type.value,
            "subject": event.subject,
            "time": attributes["ce-time"],
            "datacontenttype": "application/json",
            "data": json.loads(data),
        }
        data, attributes = json.dumps(envelope).encode(), {"content-type": "application/cloudevents+json"}
    if authorization is not None:
        attributes["authorization"] = authorization
    client = pubsub_v1.PublisherClient()
    try:
        client.publish(topic_path(project, TopicName.INTAKE), data, **attributes).result(timeout=10)
    finally:
        client.stop()


def intake_drained(emulator: Any, project: str) -> bool:
    """Every intake message so far was acked (accepted, replayed or dead-lettered)."""
    state = emulator.subscription_state(subscription_path(project, "gateway-intake"))
    return bool(state["backlog"] == 0 and state["delivered"] > 0)


async def register_tenants(url: str, *names: str, **fields: Any) -> None:
    """Register ``names`` in the tenant registry (the test's own connection), with ``fields`` for each."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for name in names:
                await add_tenant(conn, Tenant(tenant=name, **fields))
    finally:
        await engine.dispose()


async def change_tenant(url: str, name: str, **changes: Any) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await update_tenant(conn, name, **changes)
    finally:
        await engine.dispose()


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


class Db:
    """Counts in the gateway schema, through a connection of the test's own."""

    def __init__(self, url: str) -> None:
        self.engine = create_async_engine(url)

    async def count_jobs(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(jobs)) or 0)

    async def job(self, job_id: str) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(jobs).where(jobs.c.job_id == uuid.UUID(job_id)))).first()

    async def age_jobs(self, seconds: float) -> None:
        """Pretend every job was accepted ``seconds`` earlier."""
        async with self.engine.begin() as conn:
            await conn.execute(update(jobs).values(created_at=jobs.c.created_at - timedelta(seconds=seconds)))

    async def unsent(self) -> int:
        async with self.engine.connect() as conn:
            stmt = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            return int(await conn.scalar(stmt) or 0)

    async def outbox_rows(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(outbox)) or 0)

    async def idempotency_keys(self) -> set[tuple[str, str]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(idempotency_keys.c.tenant, idempotency_keys.c.key))
            return {(row.tenant, row.key) for row in rows}

    async def age_idempotency_keys(self, seconds: float) -> None:
        """Pretend every key was recorded ``seconds`` earlier."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(idempotency_keys).values(created_at=idempotency_keys.c.created_at - timedelta(seconds=seconds))
            )

    async def all_sent(self) -> bool:
        return await self.outbox_rows() > 0 and await self.unsent() == 0

    async def close(self) -> None:
        await self.engine.dispose()
