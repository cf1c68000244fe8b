"""Turns between tenants: a route that leases more messages than it runs at once serves the waiting ones
round-robin by tenant — against the real emulator through the official client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from captionqc.runtime.consumer import ConsumerRunner, HandlerContext, Route
from captionqc.runtime.pubsub import EventPublisher, subscription_path
from captionqc.schemas import CloudEvent, Stage

from .helpers import job_requested
from .test_consumer import wait_for


def runner(project: str, publisher: EventPublisher, handler: Any, *, fair: bool, **kw: Any) -> ConsumerRunner:
    route = Route("ocr-jobs", handler, max_messages=16, concurrency=1, fair=fair)
    return ConsumerRunner(
        project=project, source="//captionqc/test", routes=[route], publisher=publisher, failure_stage=Stage.OCR, **kw
    )


async def completion_order(project: str, publisher: EventPublisher, *, fair: bool) -> list[str]:
    """Tenant A queues 10 jobs, tenant B submits 1 right after; each job takes 0.2 s, one at a time."""
    finished: list[str] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        await asyncio.sleep(0.2)
        finished.append(event.tenant)

    async with runner(project, publisher, handler, fair=fair):
        await asyncio.gather(*(publisher.publish(job_requested(tenant="tenant-a")) for _ in range(10)))
        await publisher.publish(job_requested(tenant="tenant-b"))
        await wait_for(lambda: len(finished) == 11, timeout=30)
    return finished


async def test_one_tenants_backlog_does_not_hold_up_anothers_job(
    pubsub_project: str, publisher: EventPublisher
) -> None:
    finished = await completion_order(pubsub_project, publisher, fair=True)
    b = finished.index("tenant-b")
    last_a = max(i for i, tenant in enumerate(finished) if tenant == "tenant-a")
    assert b < last_a, finished
    # B waits for at most the job running when it arrived and A's next turn.
    assert b <= 2, finished


async def test_first_come_first_served_without_fairness(pubsub_project: str, publisher: EventPublisher) -> None:
    """The same load, first come first served: B waits behind A's backlog (what fair=True prevents)."""
    finished = await completion_order(pubsub_project, publisher, fair=False)
    assert finished.index("tenant-b") >= 8, finished


async def test_concurrency_bounds_the_handlers_while_more_messages_are_leased(
    pubsub_project: str, publisher: EventPublisher, pubsub_emulator: Any
) -> None:
    running = 0
    peak = 0
    done = 0

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.1)
        running -= 1
        done += 1

    for _ in range(6):
        await publisher.publish(job_requested())
    path = subscription_path(pubsub_project, "ocr-jobs")
    route = Route("ocr-jobs", handler, max_messages=6, concurrency=2)
    consumer = ConsumerRunner(
        project=pubsub_project, source="//t", routes=[route], publisher=publisher, failure_stage=Stage.OCR
    )
    async with consumer:
        await wait_for(lambda: pubsub_emulator.subscription_state(path)["outstanding"] >= 5, timeout=10)
        await wait_for(lambda: done == 6, timeout=10)
    assert peak == 2


def test_concurrency_must_fit_in_the_leased_messages(pubsub_project: str) -> None:
    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        pass

    publisher = EventPublisher(pubsub_project)
    try:
        with pytest.raises(ValueError, match="concurrency"):
            ConsumerRunner(
                project=pubsub_project,
                source="//t",
                routes=[Route("ocr-jobs", handler, max_messages=2, concurrency=3)],
                publisher=publisher,
                failure_stage=None,
            )
    finally:
        publisher.close()


async def test_sigterm_nacks_waiting_messages_at_once_and_lets_the_running_one_finish(
    pubsub_project: str, publisher: EventPublisher, pubsub_emulator: Any
) -> None:
    started: list[str] = []
    finished: list[str] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        started.append(event.tenant)
        await asyncio.sleep(1.0)  # within the grace period
        finished.append(event.tenant)

    for tenant in ("tenant-a", "tenant-a", "tenant-b", "tenant-c"):
        await publisher.publish(job_requested(tenant=tenant))
    path = subscription_path(pubsub_project, "ocr-jobs")
    consumer = runner(pubsub_project, publisher, handler, fair=True, grace_s=10.0)
    await consumer.start()
    await wait_for(lambda: len(started) == 1 and pubsub_emulator.subscription_state(path)["outstanding"] == 4)
    began = time.monotonic()
    await consumer.stop()
    stopped_in = time.monotonic() - began
    # The running job finished; the three waiting never started and are back for another worker, without
    # waiting out the grace period.
    assert (len(started), len(finished)) == (1, 1)
    assert stopped_in < 5.0
    await wait_for(lambda: pubsub_emulator.subscription_state(path)["backlog"] == 3, timeout=10)
    assert pubsub_emulator.subscription_state(path)["acked"] == 1
