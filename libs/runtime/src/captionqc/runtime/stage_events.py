"""Events every processing stage emits, built in one place: a stage's failure, its progress, and the relay that
publishes throttled progress from a worker thread.

The consumer runner and the stages' Cloud Run Job entrypoints build failures with the same function, so a failure
has the same ``ce-id`` whichever of them reports it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from captionqc.schemas import (
    CloudEvent,
    FailureReason,
    JobRequested,
    Stage,
    StageFailed,
    StageProgress,
    deterministic_event_id,
    failed_type,
    new_event,
    progress_type,
)

log = logging.getLogger(__name__)


def stage_failed_event(
    job_id: str, tenant: str, stage: Stage, reason: FailureReason, message: str, *, source: str
) -> CloudEvent[StageFailed]:
    """``captionqc.<stage>.failed`` with a deterministic ``ce-id`` (one failure per job and stage)."""
    failed = StageFailed(job_id=job_id, tenant=tenant, stage=stage, reason=reason, message=message[:2000])
    event_id = deterministic_event_id(job_id, stage.value, "failed")
    return new_event(failed_type(stage), failed, source=source, event_id=event_id)


def stage_progress_event(
    job: JobRequested, stage: Stage, fraction: float, message: str, *, source: str
) -> CloudEvent[StageProgress]:
    progress = StageProgress(
        job_id=job.job_id, tenant=job.tenant, stage=stage, progress=min(max(fraction, 0.0), 1.0), message=message
    )
    return new_event(progress_type(stage), progress, source=source)


@dataclass
class ProgressRelay:
    """Called on the worker thread; hops each (throttled) progress event back to the loop to publish it."""

    loop: asyncio.AbstractEventLoop
    publish: Callable[[CloudEvent[Any]], Awaitable[object]]
    job: JobRequested
    interval_s: float
    stage: Stage
    source: str
    _last: float = field(default=float("-inf"), init=False)
    _pending: list[concurrent.futures.Future[None]] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            if fraction < 1.0 and now - self._last < self.interval_s:
                return
            self._last = now
            event = stage_progress_event(self.job, self.stage, fraction, message, source=self.source)
            self._pending.append(asyncio.run_coroutine_threadsafe(_publish(self.publish, event), self.loop))

    async def drain(self) -> None:
        """Wait for the progress publishes; a lost progress tick is logged, never a reason to fail the job."""
        with self._lock:
            pending, self._pending = self._pending, []
        results = await asyncio.gather(*(asyncio.wrap_future(f) for f in pending), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("a progress event could not be published: %s", result)


async def _publish(publish: Callable[[CloudEvent[Any]], Awaitable[object]], event: CloudEvent[Any]) -> None:
    await publish(event)
