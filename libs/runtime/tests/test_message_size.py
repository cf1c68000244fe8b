"""Message size: what we publish stays receivable, and what arrives too large is recorded once, truncated, and
acked — against the real emulator through the official client."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from captionqc.runtime.consumer import (
    DEAD_LETTER_KEPT_BYTES,
    DEAD_LETTER_REASON,
    DEAD_LETTER_SIZE,
    DEAD_LETTER_TRUNCATED,
    ConsumerRunner,
    HandlerContext,
    Route,
)
from captionqc.runtime.errors import MessageTooLarge, PermanentError
from captionqc.runtime.pubsub import EventPublisher, message_size, subscriber_client, subscription_path, topic_path
from captionqc.runtime.settings import ServiceSettings
from captionqc.runtime.testing.bus import pull_messages
from captionqc.schemas import CloudEvent, Refusal, Stage, TopicName, to_pubsub

from .helpers import job_requested
from .test_consumer import wait_for

NINE_MB = 9_000_000


def test_the_limit_defaults_below_a_subscribers_4_mib() -> None:
    assert ServiceSettings().max_message_bytes == 3 * 1024 * 1024 < 4 * 1024 * 1024


async def test_our_publisher_refuses_what_a_subscriber_could_not_receive(
    pubsub_project: str, publisher: EventPublisher
) -> None:
    data, attributes = to_pubsub(job_requested())
    with pytest.raises(MessageTooLarge, match="exceeds the 3145728-byte message limit") as err:
        await publisher.publish_raw(TopicName.JOBS, b" " * (3 * 1024 * 1024), attributes)
    assert isinstance(err.value, PermanentError)  # a handler that hits it fails its job instead of retrying
    small = EventPublisher(pubsub_project, max_message_bytes=64 * 1024)
    try:
        event = job_requested()
        padded = event.model_copy(update={"extensions": {"x-padding": "p" * 65_000}})
        with pytest.raises(MessageTooLarge):
            await small.publish(padded)
        await small.publish(event)
    finally:
        small.close()
    assert message_size(data, attributes) < 3 * 1024 * 1024


def _publish_official(project: str, topic: str, data: bytes, attributes: dict[str, str]) -> str:
    client = pubsub_v1.PublisherClient()
    try:
        message_id: str = client.publish(topic_path(project, topic), data, **attributes).result(timeout=30)
        return message_id
    finally:
        client.stop()


def _receive_one(project: str, subscription: str, *, timeout: float) -> list[int]:
    """Sizes of the messages a streaming pull of ``subscriber_client()`` receives within ``timeout``."""
    client = subscriber_client()
    sizes: list[int] = []

    def callback(message: Any) -> None:
        sizes.append(len(message.data))
        message.ack()

    future = client.subscribe(subscription_path(project, subscription), callback=callback)
    deadline = time.monotonic() + timeout
    while not sizes and time.monotonic() < deadline:
        time.sleep(0.05)
    future.cancel()
    client.close()
    return sizes


async def test_the_runners_subscriber_receives_a_9_mb_message_from_the_emulator(pubsub_project: str) -> None:
    """The official client's own emulator channel stops at 4 MiB; ours receives what Pub/Sub accepts."""
    await asyncio.to_thread(_publish_official, pubsub_project, TopicName.JOBS, b"x" * NINE_MB, {"k": "v"})
    sizes = await asyncio.to_thread(_receive_one, pubsub_project, "ocr-jobs", timeout=20)
    assert sizes == [NINE_MB]


async def test_a_9_mb_message_is_dead_lettered_truncated_and_acked_once(
    pubsub_project: str, publisher: EventPublisher, pubsub_emulator: Any
) -> None:
    calls: list[str] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        calls.append(event.id)

    sent = job_requested()
    _, attributes = to_pubsub(sent)
    # Valid-looking, but 9 MB: a JSON body padded with spaces.
    data = json.dumps(json.loads(sent.data.model_dump_json())).encode() + b" " * NINE_MB
    message_id = await asyncio.to_thread(
        _publish_official, pubsub_project, TopicName.JOBS, data, {**attributes, "authorization": "Bearer secret"}
    )
    runner = ConsumerRunner(
        project=pubsub_project,
        source="//captionqc/test",
        routes=[Route("ocr-jobs", handler)],
        publisher=publisher,
        failure_stage=Stage.OCR,
    )
    path = subscription_path(pubsub_project, "ocr-jobs")
    await runner.start()
    try:
        dead = await asyncio.to_thread(pull_messages, pubsub_project, "status-dead-letter", expect=1, timeout=30)
        await wait_for(lambda: pubsub_emulator.subscription_state(path)["acked"] == 1, timeout=20)
        await asyncio.sleep(3)  # past the retry backoff: a redelivery or a second dead letter would show now
        more = await asyncio.to_thread(pull_messages, pubsub_project, "status-dead-letter", expect=1, timeout=2)
    finally:
        await runner.stop()
    assert calls == []
    assert more == []
    assert len(dead) == 1
    letter = dead[0]
    assert letter.attributes[DEAD_LETTER_REASON] == Refusal.MESSAGE_TOO_LARGE
    assert letter.attributes[DEAD_LETTER_TRUNCATED] == "true"
    assert int(letter.attributes[DEAD_LETTER_SIZE]) == message_size(
        data, {**attributes, "authorization": "Bearer secret"}
    )
    assert letter.data == data[:DEAD_LETTER_KEPT_BYTES]
    assert letter.attributes["ce-id"] == sent.id
    assert "authorization" not in letter.attributes
    state = pubsub_emulator.subscription_state(path)
    assert (state["delivered"], state["acked"], state["backlog"], state["dead_lettered"]) == (1, 1, 0, 0)
    assert message_id
