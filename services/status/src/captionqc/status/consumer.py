"""Event handlers of the status subscriptions, and the batcher that groups their commits.

Every status subscription carries events for the projector except ``status-dead-letter``, whose messages are
taken raw: they may be exactly the messages that cannot be decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from captionqc.runtime.consumer import HandlerContext, Route
from captionqc.runtime.errors import PermanentError, TransientError
from captionqc.runtime.storage import StorageUnavailable, result_store_from_uri
from captionqc.schemas import CaptionSegment, CloudEvent, OcrCompleted
from captionqc.schemas.envelope import describe_validation_error
from captionqc.status.projection import FetchedCaptions, parse_dead_letter
from captionqc.status.service import Incoming, StatusService
from captionqc.status.settings import StatusSettings

log = logging.getLogger(__name__)

EVENT_SUBSCRIPTIONS = (
    "status-jobs",
    "status-ocr-results",
    "status-asr-results",
    "status-findings",
    "status-progress",
)
DEAD_LETTER_SUBSCRIPTION = "status-dead-letter"
# A claim-checked result that still cannot be fetched after this many deliveries is recorded as unavailable:
# the job's state must not wait on the captions export.
_CAPTION_FETCH_ATTEMPTS = 3


class ProjectionBatcher:
    """Group commit: handlers submit events and wait; one loop projects whatever has gathered in one transaction.

    A batch that fails is retried event by event, so one bad event fails only its own message.
    """

    def __init__(
        self, project: Callable[[Sequence[Incoming]], Awaitable[None]], *, max_batch: int, max_wait_s: float
    ) -> None:
        self._project = project
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._queue: asyncio.Queue[tuple[Incoming, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="projection-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            future.cancel()

    async def submit(self, item: Incoming) -> None:
        if self._task is None or self._task.done():
            raise TransientError("the projection batcher is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self._max_wait_s
            while len(batch) < self._max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0 and self._queue.empty():
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), max(remaining, 0)))
                except TimeoutError:
                    break
            live = [(item, fut) for item, fut in batch if not fut.done()]
            if live:
                await self._flush(live)

    async def _flush(self, batch: list[tuple[Incoming, asyncio.Future[None]]]) -> None:
        try:
            await self._project([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            log.warning("batch projection failed; projecting its events one by one", extra={"count": len(batch)})
            for item, future in batch:
                try:
                    await self._project([item])
                except Exception as single:
                    _settle(future, single)
                else:
                    _settle(future, None)
            return
        for _, future in batch:
            _settle(future, None)


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


class CaptionFetcher:
    """Fetches the captions of a claim-checked ``ocr.completed`` from the results store (file:// or gs://)."""

    def __init__(self, results_uri: str | None) -> None:
        self._store: Any = None
        if results_uri:
            self._store = result_store_from_uri(results_uri)

    def fetch(self, uri: str, delivery_attempt: int) -> FetchedCaptions:
        """Blocking: run it in the pool."""
        if self._store is None:
            return FetchedCaptions(None, "no results store configured to fetch the claim-checked captions")
        try:
            raw = self._store.get_json(uri)
            result = OcrCompleted.model_validate_json(raw)
        except PermanentError as exc:
            return FetchedCaptions(None, f"captions could not be fetched: {exc.message}")
        except ValidationError as exc:
            return FetchedCaptions(None, f"stored OCR result is invalid: {describe_validation_error(exc)}")
        except ValueError as exc:
            return FetchedCaptions(None, f"captions could not be fetched: {exc}")
        except (StorageUnavailable, OSError) as exc:
            if delivery_attempt < _CAPTION_FETCH_ATTEMPTS:
                raise TransientError(f"fetching captions failed: {exc}") from exc
            return FetchedCaptions(None, f"captions could not be fetched after {delivery_attempt} attempts: {exc}")
        segments: list[CaptionSegment] = list(result.segments or [])
        return FetchedCaptions(segments)


def status_routes(
    settings: StatusSettings, service: StatusService, batcher: ProjectionBatcher, fetcher: CaptionFetcher
) -> list[Route]:
    async def on_event(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        captions = None
        data = event.data
        if isinstance(data, OcrCompleted) and data.result_uri is not None:
            captions = await ctx.run_in_pool(fetcher.fetch, data.result_uri, ctx.delivery_attempt)
        await batcher.submit(Incoming(event, captions))

    async def on_dead_letter(data: bytes, attributes: Mapping[str, str], ctx: HandlerContext) -> None:
        # Whatever arrives is recorded and acked (the service logs what it did with it): this subscription has no
        # dead-letter policy, so a message it failed on would come back forever.
        await service.project_dead_letter(parse_dead_letter(data, attributes))

    limit = settings.max_messages_per_subscription
    return [
        *(Route(name, on_event, max_messages=limit) for name in EVENT_SUBSCRIPTIONS),
        Route(DEAD_LETTER_SUBSCRIPTION, on_dead_letter, max_messages=limit, raw=True),
    ]
