"""What the runner refuses before or instead of a handler, against the real emulator through the official client:
event types a subscription's producers do not publish, messages a handler refuses, and credentials that must
never leave the message they came in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from captionqc.runtime.consumer import (
    DEAD_LETTER_MESSAGE,
    DEAD_LETTER_REASON,
    ConsumerRunner,
    HandlerContext,
    Route,
)
from captionqc.runtime.errors import MessageRefused
from captionqc.runtime.pubsub import EventPublisher, subscription_path, topic_path
from captionqc.runtime.testing.bus import pull_messages
from captionqc.schemas import (
    CloudEvent,
    CrosscheckCompleted,
    EventType,
    FindingsSummary,
    Refusal,
    Stage,
    TopicName,
    new_event,
    to_pubsub,
)

from .helpers import job_requested
from .test_consumer import run, wait_for

TOKEN = "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRlbmFudC1jbGFpbXM.never-to-be-seen-again"


def forged_findings(job_id: str) -> CloudEvent[Any]:
    return new_event(
        EventType.CROSSCHECK_COMPLETED,
        CrosscheckCompleted(job_id=job_id, tenant="mallory", findings=[], summary=FindingsSummary(counts={})),
        source="//attacker",
    )


def runner_for(
    project: str, publisher: EventPublisher, *routes: Route, stage: Stage | None = Stage.OCR
) -> ConsumerRunner:
    return ConsumerRunner(
        project=project, source="//captionqc/test", routes=list(routes), publisher=publisher, failure_stage=stage
    )


def publish_with_the_official_client(project: str, topic: str, data: bytes, attributes: Mapping[str, str]) -> None:
    """As an outside publisher would: our own publisher never puts a credential on an internal topic."""
    client = pubsub_v1.PublisherClient()
    try:
        client.publish(topic_path(project, topic), data, **dict(attributes)).result(timeout=10)
    finally:
        client.stop()


async def test_an_event_type_the_subscription_does_not_carry_is_dead_lettered_before_the_handler(
    pubsub_project: str, publisher: EventPublisher, pubsub_emulator: Any
) -> None:
    seen: list[EventType] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        seen.append(event.type)

    forged = forged_findings(job_requested().subject)
    await publisher.publish(forged, topic=TopicName.JOBS)  # findings on `jobs`: only job.requested belongs there
    genuine = job_requested()
    await publisher.publish(genuine)
    runner = runner_for(pubsub_project, publisher, Route("ocr-jobs", handler))
    await runner.start()
    try:
        dead = await asyncio.to_thread(pull_messages, pubsub_project, "status-dead-letter", expect=1)
        await wait_for(lambda: len(seen) == 1)
    finally:
        await runner.stop()
    assert seen == [EventType.JOB_REQUESTED]
    assert [m.attributes["ce-id"] for m in dead] == [forged.id]
    assert dead[0].attributes[DEAD_LETTER_REASON] == Refusal.UNEXPECTED_TYPE
    assert "captionqc.crosscheck.completed" in dead[0].attributes[DEAD_LETTER_MESSAGE]
    path = subscription_path(pubsub_project, "ocr-jobs")
    await wait_for(lambda: pubsub_emulator.subscription_state(path)["backlog"] == 0, timeout=10)
    # No ocr.failed either: a refusal is not the job's failure.
    assert await asyncio.to_thread(pull_messages, pubsub_project, "status-ocr-results", expect=1, timeout=2) == []


async def test_a_route_may_name_the_types_it_accepts(pubsub_project: str, publisher: EventPublisher) -> None:
    seen: list[EventType] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        seen.append(event.type)

    await publisher.publish(forged_findings(job_requested().subject), topic=TopicName.JOBS)
    route = Route("ocr-jobs", handler, accepts=frozenset({EventType.CROSSCHECK_COMPLETED}))
    await run(runner_for(pubsub_project, publisher, route), lambda: len(seen) == 1)
    assert seen == [EventType.CROSSCHECK_COMPLETED]


def test_a_route_outside_the_topology_must_name_its_types(pubsub_project: str) -> None:
    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        pass

    publisher = EventPublisher(pubsub_project)
    try:
        with pytest.raises(ValueError, match="not in the topology"):
            runner_for(pubsub_project, publisher, Route("somewhere-else", handler))
    finally:
        publisher.close()


async def test_a_refused_message_is_dead_lettered_with_its_reason_and_never_fails_a_job(
    pubsub_project: str, publisher: EventPublisher, pubsub_emulator: Any
) -> None:
    calls: list[str] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        calls.append(event.id)
        raise MessageRefused(Refusal.TENANT_MISMATCH, "the job belongs to another tenant")

    sent = job_requested()
    await publisher.publish(sent)
    # On a stage worker, whose permanent failures become ocr.failed: a refusal must not.
    runner = runner_for(pubsub_project, publisher, Route("ocr-jobs", handler), stage=Stage.OCR)
    await runner.start()
    try:
        dead = await asyncio.to_thread(pull_messages, pubsub_project, "status-dead-letter", expect=1)
    finally:
        await runner.stop()
    assert calls == [sent.id]
    assert [m.attributes["ce-id"] for m in dead] == [sent.id]
    assert dead[0].attributes[DEAD_LETTER_REASON] == Refusal.TENANT_MISMATCH
    assert dead[0].attributes[DEAD_LETTER_MESSAGE] == "the job belongs to another tenant"
    path = subscription_path(pubsub_project, "ocr-jobs")
    await wait_for(lambda: pubsub_emulator.subscription_state(path)["acked"] == 1, timeout=10)
    assert await asyncio.to_thread(pull_messages, pubsub_project, "status-ocr-results", expect=1, timeout=2) == []
    assert pubsub_emulator.subscription_state(path)["delivered"] == 1


async def test_an_intake_token_reaches_the_handler_but_never_a_dead_letter_a_log_or_a_span(
    pubsub_project: str,
    publisher: EventPublisher,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tokens: list[str] = []

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        tokens.append(event.extensions["authorization"])
        raise MessageRefused(Refusal.UNAUTHENTICATED, "the token does not verify")

    sent = job_requested()
    data, attributes = to_pubsub(sent)
    # What an upstream publisher sends on intake (our publisher keeps the credential there, and only there).
    await publisher.publish_raw(TopicName.INTAKE, data, {**attributes, "authorization": TOKEN})
    caplog.set_level(logging.DEBUG)
    runner = runner_for(pubsub_project, publisher, Route("gateway-intake", handler), stage=None)
    await runner.start()
    try:
        dead = await asyncio.to_thread(pull_messages, pubsub_project, "status-dead-letter", expect=1)
    finally:
        await runner.stop()
    assert tokens == [TOKEN]
    assert dead[0].attributes[DEAD_LETTER_REASON] == Refusal.UNAUTHENTICATED
    assert dead[0].attributes["ce-id"] == sent.id
    assert not any(k.lower() == "authorization" for k in dead[0].attributes)
    secret = TOKEN.rsplit(".", maxsplit=1)[-1]
    assert secret not in caplog.text
    assert not any(secret in repr(record.__dict__) for record in caplog.records)
    for span in spans.get_finished_spans():
        assert secret not in repr(dict(span.attributes or {})), span.name
        assert all(secret not in repr(dict(e.attributes or {})) for e in span.events), span.name


async def test_a_credential_on_an_internal_topic_is_neither_forwarded_nor_handed_to_a_raw_handler(
    pubsub_project: str, publisher: EventPublisher
) -> None:
    received: list[dict[str, str]] = []

    async def raw_handler(data: bytes, attributes: Mapping[str, str], ctx: HandlerContext) -> None:
        received.append(dict(attributes))

    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        raise AssertionError("a findings event on jobs must not reach the handler")

    data, attributes = to_pubsub(forged_findings(job_requested().subject))
    # An outside publisher's message on `jobs`, with a token: refused as unexpected_type and dead-lettered; what
    # the dead-letter reader then gets has no token. Pub/Sub's own dead-lettering forwards attributes verbatim,
    # so one also arrives straight on the dead-letter topic: the raw handler must not see that one either.
    await asyncio.to_thread(
        publish_with_the_official_client, pubsub_project, TopicName.JOBS, data, {**attributes, "Authorization": TOKEN}
    )
    await asyncio.to_thread(
        publish_with_the_official_client, pubsub_project, TopicName.DEAD_LETTER, b"x", {"authorization": TOKEN}
    )
    runner = runner_for(
        pubsub_project, publisher, Route("ocr-jobs", handler), Route("status-dead-letter", raw_handler, raw=True)
    )
    await run(runner, lambda: len(received) == 2)
    assert sorted(r.get(DEAD_LETTER_REASON, "") for r in received) == ["", Refusal.UNEXPECTED_TYPE]
    assert all(k.lower() != "authorization" for r in received for k in r)


async def test_our_publisher_never_puts_a_credential_on_an_internal_topic(
    pubsub_project: str, publisher: EventPublisher
) -> None:
    event = job_requested().model_copy(update={"extensions": {"authorization": TOKEN, "traceparent": "x"}})
    await publisher.publish(event)
    got = await asyncio.to_thread(pull_messages, pubsub_project, "ocr-jobs", expect=1)
    assert got[0].attributes["ce-id"] == event.id
    assert "authorization" not in got[0].attributes


async def test_an_attribute_with_a_control_character_is_refused_and_left_out_of_the_dead_letter(
    pubsub_project: str, publisher: EventPublisher
) -> None:
    async def handler(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        raise AssertionError("must not be handled")

    sent = job_requested()
    data, attributes = to_pubsub(sent)
    await publisher.publish_raw(TopicName.JOBS, data, {**attributes, "ce-subject": "a\x00b"})
    runner = runner_for(pubsub_project, publisher, Route("ocr-jobs", handler))
    await runner.start()
    try:
        dead = await asyncio.to_thread(pull_messages, pubsub_project, "status-dead-letter", expect=1)
    finally:
        await runner.stop()
    assert dead[0].attributes[DEAD_LETTER_REASON] == Refusal.MALFORMED_ENVELOPE
    assert "'ce-subject'" in dead[0].attributes[DEAD_LETTER_MESSAGE]
    assert "ce-subject" not in dead[0].attributes
    assert dead[0].attributes["ce-id"] == sent.id
