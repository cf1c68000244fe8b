"""Reading what landed on the emulator, and waiting for it, bounded in time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from captionqc.gateway.tables import jobs, outbox
from captionqc.runtime.pubsub import subscription_path


def pull_all(project: str, subscription: str, *, expect: int, timeout: float = 10.0) -> list[Any]:
    """Pull (and ack) up to ``expect`` messages from a subscription of the test project."""
    subscriber = pubsub_v1.SubscriberClient()
    path = subscription_path(project, subscription)
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expect and time.monotonic() < deadline:
            resp = subscriber.pull(request={"subscription": path, "max_messages": 50}, timeout=5)
            if resp.received_messages:
                subscriber.acknowledge(
                    request={"subscription": path, "ack_ids": [m.ack_id for m in resp.received_messages]}
                )
                got.extend(m.message for m in resp.received_messages)
    finally:
        subscriber.close()
    return got


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

    async def unsent(self) -> int:
        async with self.engine.connect() as conn:
            stmt = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            return int(await conn.scalar(stmt) or 0)

    async def outbox_rows(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(outbox)) or 0)

    async def all_sent(self) -> bool:
        return await self.outbox_rows() > 0 and await self.unsent() == 0

    async def close(self) -> None:
        await self.engine.dispose()
