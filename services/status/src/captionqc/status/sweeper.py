"""The deadline sweeper: no job hangs forever waiting for a stage that went silent."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from captionqc.status.service import StatusService

log = logging.getLogger(__name__)


class DeadlineSweeper:
    """Every ``interval_s``, fail (``result_missing``) up to ``batch`` jobs whose stages stayed silent too long.

    Replicas may all sweep: rows are taken with ``FOR UPDATE SKIP LOCKED`` and only open jobs are updated, so a job
    is failed once. A full batch is followed at once by another pass, still bounded by ``max_passes``.
    """

    def __init__(
        self, service: StatusService, *, deadline_s: float, interval_s: float, batch: int, max_passes: int = 10
    ) -> None:
        self._service = service
        self._deadline_s = deadline_s
        self._interval_s = interval_s
        self._batch = batch
        self._max_passes = max_passes
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="deadline-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def sweep_once(self) -> int:
        total = 0
        for _ in range(self._max_passes):
            expired = await self._service.sweep_deadlines(deadline_s=self._deadline_s, limit=self._batch)
            total += len(expired)
            if len(expired) < self._batch:
                break
        return total

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                count = await self.sweep_once()
                if count:
                    log.warning("deadline sweep failed jobs", extra={"count": count})
            except Exception:
                # The database may be briefly away; the next pass tries again.
                log.exception("deadline sweep failed")
