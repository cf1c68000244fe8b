"""The outbox relay: publishes committed outbox rows and marks them sent.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so several relays (gateway workers, replicas) share the work
without publishing the same row at once. A relay killed after publishing but before marking leaves the row
unsent; the next pass publishes it again with the same ``ce-id``, which consumers dedupe. ``wake()`` lets the
process that just committed a row publish it at once; polling covers everything else (other processes, restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionqc.runtime.pubsub import EventPublisher

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Table,
        publisher: EventPublisher,
        *,
        batch_size: int = 100,
        poll_interval_s: float = 0.5,
    ) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    def wake(self) -> None:
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop the loop, then publish what is still pending (bounded), so commits made just before shutdown leave."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        # The loop's last pass may have started before the latest commits: one more bounded pass after it.
        with contextlib.suppress(Exception):
            for _ in range(10):
                if await self.publish_pending() < self._batch_size:
                    break

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            # Clear before the pass: a wake() landing during the pass then triggers the next one at once.
            self._wakeup.clear()
            try:
                while await self.publish_pending() == self._batch_size:
                    pass  # a full batch: there may be more right behind it
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database or Pub/Sub is briefly unavailable: rows stay unsent and the next pass retries.
                log.exception("outbox relay pass failed; retrying")
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_interval_s)

    async def publish_pending(self) -> int:
        """One pass: claim a batch of unsent rows, publish them, mark them sent. Returns the rows published."""
        table = self._outbox
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(table.c.id, table.c.event_id, table.c.topic, table.c.data, table.c.attributes)
                    .where(table.c.published_at.is_(None))
                    .order_by(table.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            results = await asyncio.gather(
                *(self._publisher.publish_raw(r.topic, r.data, r.attributes) for r in rows),
                return_exceptions=True,
            )
            sent = [r.id for r, res in zip(rows, results, strict=True) if not isinstance(res, BaseException)]
            failed = [r.id for r, res in zip(rows, results, strict=True) if isinstance(res, BaseException)]
            if sent:
                await session.execute(update(table).where(table.c.id.in_(sent)).values(published_at=datetime.now(UTC)))
            if failed:
                await session.execute(
                    update(table).where(table.c.id.in_(failed)).values(publish_attempts=table.c.publish_attempts + 1)
                )
                log.warning("outbox publish failed; will retry", extra={"count": len(failed)})
            return len(sent)
