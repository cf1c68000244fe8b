"""The consumer runner against the real emulator through the official client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from captionqc.runtime.consumer import DEAD_LETTER_REASON, ConsumerRunner, HandlerContext, Route
from captionqc.runtime.errors import PermanentError, TransientError
from captionqc.runtime.pubsub import EventPublisher, subscription_path, topic_path
from captionqc.runtime.testing.bus import pull_messages
from captionqc.schemas import CloudEvent, EventType, FailureReason, Stage, StageFailed, TopicName, from_pubsub

from .helpers import job_requested


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def run(runner: ConsumerRunner, until: Callable[[], bool], timeout: float = 20.0) -> None:
    await runner.start()
    try:
        await wait_for(until, timeout)
    finally:
        await runner.stop()


def make_runner(
    project: str, publisher: EventPublisher, handler: Any, *, lease_extension_s: int = 0, **kw: Any
) -> ConsumerRunner:
    return ConsumerRunner(
        project=project,
        source="//captionqc/test",
        routes=[Route("ocr-jobs", handler, lease_extension_s=lease_extension_s)],
        publisher=publisher,
        failure_stage=Stage.OCR,
        **kw,
    )


async def test_event_consumed_with_trace_continued(
    pubsub_project: str, publisher: EventPublisher, spans: InMemorySpanExporter
) -> None:
    received: list[CloudEvent[Any]] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        received.append(event)

    sent = job_requested()
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("gateway POST /v1/jobs") as root:
        await publisher.publish(sent)
        root_trace = root.get_span_context().trace_id
    await run(make_runner(pubsub_project, publisher, handler), lambda: len(received) == 1)
    assert received[0].id == sent.id
    assert received[0].data == sent.data
    consumer_spans = [s for s in spans.get_finished_spans() if s.name == "ocr-jobs process"]
    assert len(consumer_spans) == 1
    span_ctx = consumer_spans[0].get_span_context()
    assert span_ctx is not None
    assert span_ctx.trace_id == root_trace
    assert consumer_spans[0].attributes is not None
    assert consumer_spans[0].attributes["captionqc.job_id"] == sent.subject


async def test_transient_error_is_retried(pubsub_project: str, publisher: EventPublisher) -> None:
    attempts: list[int] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        attempts.append(ctx.delivery_attempt)
        if len(attempts) == 1:
            raise TransientError("storage answered 503")

    await publisher.publish(job_requested())
    # The topology's retry policy backs off at least 2 s before the redelivery.
    started = time.monotonic()
    await run(make_runner(pubsub_project, publisher, handler), lambda: len(attempts) == 2, timeout=30)
    assert attempts == [1, 2]
    assert time.monotonic() - started >= 1.5


async def test_permanent_error_becomes_failed_event_without_redelivery(
    pubsub_project: str, publisher: EventPublisher, pubsub_emulator: Any
) -> None:
    calls: list[str] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        calls.append(event.id)
        raise PermanentError(FailureReason.NO_VIDEO_STREAM, "the media has no video stream")

    sent = job_requested()
    await publisher.publish(sent)
    await run(make_runner(pubsub_project, publisher, handler), lambda: len(calls) == 1)
    failed = pull_messages(pubsub_project, "status-ocr-results", expect=1)
    assert len(failed) == 1
    event = from_pubsub(failed[0].data, dict(failed[0].attributes))
    assert event.type is EventType.OCR_FAILED
    assert isinstance(event.data, StageFailed)
    assert event.data.reason is FailureReason.NO_VIDEO_STREAM
    assert event.data.job_id == sent.data.job_id
    await asyncio.sleep(3)  # longer than the retry backoff: a redelivery would show up now
    assert calls == [sent.id]
    state = pubsub_emulator.subscription_state(subscription_path(pubsub_project, "ocr-jobs"))
    assert state["backlog"] == 0


async def test_a_handler_working_past_several_lease_deadlines_keeps_its_message(
    pubsub_project: str, publisher: EventPublisher, pubsub_emulator: Any
) -> None:
    attempts: list[int] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        attempts.append(ctx.delivery_attempt)
        # CPU work runs off the loop: the client's lease thread extends the lease meanwhile.
        await ctx.run_in_pool(time.sleep, 24)

    # 10 s leases: without extensions the emulator would redeliver after 10 s (and again after 20 s).
    runner = make_runner(pubsub_project, publisher, handler, lease_extension_s=10)
    await publisher.publish(job_requested())
    path = subscription_path(pubsub_project, "ocr-jobs")
    await run(runner, lambda: pubsub_emulator.subscription_state(path)["acked"] == 1, timeout=60)
    state = pubsub_emulator.subscription_state(path)
    assert attempts == [1]
    assert (state["delivered"], state["acked"], state["backlog"]) == (1, 1, 0)


@pytest.mark.parametrize(
    ("data", "attributes", "reason"),
    [
        (b"{not json", {"ce-type": "captionqc.job.requested"}, "invalid_event_data"),
        (b"{}", {"ce-type": "captionqc.job.exploded"}, "unknown_event_type"),
        (b'{"schema_version": 99}', {"ce-type": "captionqc.job.requested"}, "unsupported_schema_version"),
        (b"{}", {}, "malformed_envelope"),
    ],
)
async def test_undecodable_message_is_dead_lettered_at_once(
    pubsub_project: str, publisher: EventPublisher, data: bytes, attributes: dict[str, str], reason: str
) -> None:
    calls: list[str] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        calls.append(event.id)

    base = {"ce-id": "bad-1", "ce-source": "//upstream", "ce-specversion": "1.0"} if attributes else {}
    await publisher.publish_raw(TopicName.JOBS, data, {**base, **attributes} or {"x": "y"})
    runner = make_runner(pubsub_project, publisher, handler)
    await runner.start()
    try:
        dead = await asyncio.to_thread(pull_messages, pubsub_project, "status-dead-letter", expect=1)
    finally:
        await runner.stop()
    assert calls == []
    assert len(dead) == 1
    assert dead[0].attributes[DEAD_LETTER_REASON] == reason
    assert dead[0].data == data


async def test_sigterm_drain_finishes_in_flight_work_and_nacks_the_rest(
    pubsub_project: str, publisher: EventPublisher, pubsub_emulator: Any
) -> None:
    started: list[str] = []
    finished: list[str] = []
    release = asyncio.Event()

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        started.append(event.id)
        if len(started) == 1:
            await asyncio.sleep(0.5)  # finishes within the grace period
        else:
            await release.wait()  # never released: must be nacked at the end of the grace period
        finished.append(event.id)

    for _ in range(2):
        await publisher.publish(job_requested())
    runner = make_runner(pubsub_project, publisher, handler, grace_s=2.0)
    await runner.start()
    await wait_for(lambda: len(started) == 2)
    await runner.stop()
    assert len(finished) == 1
    path = subscription_path(pubsub_project, "ocr-jobs")
    # The finished message was acked; the unfinished one is back in the backlog for another worker.
    await wait_for(lambda: pubsub_emulator.subscription_state(path)["backlog"] == 1, timeout=10)


async def test_publisher_puts_events_on_their_topology_topic(pubsub_project: str, publisher: EventPublisher) -> None:
    sent = job_requested()
    await publisher.publish(sent)
    for sub in ("ocr-jobs", "asr-jobs", "status-jobs"):
        got = await asyncio.to_thread(pull_messages, pubsub_project, sub, expect=1)
        assert [m.attributes["ce-id"] for m in got] == [sent.id]
    assert topic_path(pubsub_project, "jobs").endswith("/topics/jobs")


async def test_raw_route_gets_undecodable_messages_as_they_are(
    pubsub_project: str, publisher: EventPublisher, pubsub_emulator: Any
) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def raw_handler(data: bytes, attributes: Mapping[str, str], ctx: HandlerContext) -> None:
        received.append((data, dict(attributes)))
        if len(received) == 2:
            raise PermanentError(FailureReason.INVALID_EVENT, "nothing to be done with it")

    await publisher.publish_raw(TopicName.DEAD_LETTER, b"{not json", {"ce-type": "captionqc.job.exploded"})
    await publisher.publish_raw(TopicName.DEAD_LETTER, b"second", {})
    runner = ConsumerRunner(
        project=pubsub_project,
        source="//captionqc/test",
        routes=[Route("status-dead-letter", raw_handler, raw=True)],
        publisher=publisher,
        failure_stage=None,
    )
    await run(runner, lambda: len(received) == 2)
    assert sorted(data for data, _ in received) == [b"second", b"{not json"]
    assert any(attrs.get("ce-type") == "captionqc.job.exploded" for _, attrs in received)
    # Both acked (the permanent failure too), and nothing was forwarded to the dead-letter topic again.
    path = subscription_path(pubsub_project, "status-dead-letter")
    await wait_for(lambda: pubsub_emulator.subscription_state(path)["backlog"] == 0, timeout=10)
    await asyncio.sleep(2.5)
    assert len(received) == 2
