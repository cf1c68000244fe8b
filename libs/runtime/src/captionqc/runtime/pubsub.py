"""Pub/Sub publishing over the official client, and applying the declared topology.

The same code talks to Google Cloud Pub/Sub or to the in-repo emulator: the official client switches to the
emulator by itself when ``PUBSUB_EMULATOR_HOST`` is set, with no credentials needed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

import grpc
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from google.cloud.pubsub_v1.types import PublisherOptions, PublishFlowControl
from google.protobuf import duration_pb2, field_mask_pb2
from google.pubsub_v1 import types as pstypes
from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

from captionqc.runtime.errors import MessageTooLarge
from captionqc.runtime.tracing import inject_trace_context
from captionqc.schemas import EVENT_TOPICS, TOPOLOGY, CloudEvent, TopicName, Topology, to_pubsub

log = logging.getLogger(__name__)

# Message attributes that hold credentials: an intake message's bearer token. They are read from the received
# event's extensions by the one handler that verifies them, and never leave: not forwarded to another topic
# (dead letters included), not handed to raw handlers, never logged nor written into spans.
SECRET_ATTRIBUTES: frozenset[str] = frozenset({"authorization"})


DEFAULT_MAX_MESSAGE_BYTES = 3 * 1024 * 1024  # ServiceSettings.max_message_bytes


def message_size(data: bytes, attributes: Mapping[str, str]) -> int:
    """A message's size as Pub/Sub counts it against its limits: data plus attribute keys and values."""
    return len(data) + sum(len(k.encode()) + len(v.encode()) for k, v in attributes.items())


def subscriber_client() -> pubsub_v1.SubscriberClient:
    """The official subscriber client, receiving messages of any size on the emulator as it does in production.

    In production the client's channel has no receive limit; on the emulator (``PUBSUB_EMULATOR_HOST``) it builds
    a plain channel with gRPC's default 4 MiB limit, and a larger message is dropped by the client without a trace
    until its lease runs out, again and again. Our own channel keeps the two alike, so that an oversized message
    reaches the runner, which records it.
    """
    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
    if not emulator:
        return pubsub_v1.SubscriberClient()
    channel = grpc.insecure_channel(
        emulator, options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    )
    return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(host=emulator, channel=channel))


def is_secret_attribute(name: str) -> bool:
    return name.lower() in SECRET_ATTRIBUTES


def without_secrets(attributes: Mapping[str, str]) -> dict[str, str]:
    """``attributes`` minus every credential (`SECRET_ATTRIBUTES`, any case)."""
    return {k: v for k, v in attributes.items() if not is_secret_attribute(k)}


def topic_path(project: str, topic: str) -> str:
    return f"projects/{project}/topics/{topic}"


def subscription_path(project: str, subscription: str) -> str:
    return f"projects/{project}/subscriptions/{subscription}"


class EventPublisher:
    """Asyncio-friendly publisher: awaitable results and a bound on publishes in flight.

    No retry layer of our own: the client already retries publishes with backoff. The bound is enforced with an
    asyncio semaphore so that a full pipe makes callers wait instead of blocking the event loop; the client's
    own flow control is set to the same limits as a backstop.
    """

    def __init__(
        self,
        project: str,
        *,
        max_in_flight: int = 1000,
        max_bytes: int = 64 * 1024 * 1024,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.project = project
        self.max_message_bytes = max_message_bytes
        self._client = pubsub_v1.PublisherClient(
            publisher_options=PublisherOptions(
                flow_control=PublishFlowControl(
                    message_limit=max_in_flight,
                    byte_limit=max_bytes,
                    limit_exceeded_behavior=pubsub_v1.types.LimitExceededBehavior.ERROR,
                )
            )
        )
        self._slots = asyncio.Semaphore(max_in_flight)

    async def publish(self, event: CloudEvent[Any], *, topic: str | None = None) -> str:
        """Publish ``event`` to its topic (from the topology unless given) with the current trace context."""
        data, attributes = to_pubsub(event)
        inject_trace_context(attributes)
        return await self.publish_raw(topic or EVENT_TOPICS[event.type], data, attributes)

    async def publish_raw(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish one message as given; credentials are dropped from it unless it goes to the intake topic,
        where upstream publishers put them (our internal topics never carry one). Raises `MessageTooLarge` (a
        `PermanentError`) for a message over ``max_message_bytes``."""
        if topic != TopicName.INTAKE:
            attributes = without_secrets(attributes)
        size = message_size(data, attributes)
        if size > self.max_message_bytes:
            # Pub/Sub would take it (up to 10 MB), but no subscriber with a default channel could receive it.
            raise MessageTooLarge(topic, size, self.max_message_bytes)
        async with self._slots:
            future = self._client.publish(topic_path(self.project, topic), data, **dict(attributes))
            message_id: str = await asyncio.wrap_future(future)
            return message_id

    def close(self) -> None:
        self._client.stop()


def _duration(seconds: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=seconds)


def apply_topology(project: str, topology: Topology = TOPOLOGY) -> list[str]:
    """Create or update every topic and subscription of ``topology`` in ``project``; idempotent.

    Returns a line per change for the caller to print. Mutable settings of existing subscriptions (ack deadline,
    retention, retry and dead-letter policies) are brought in line; a subscription bound to another topic is
    reported, never silently recreated (that would drop its backlog).
    """
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    changes: list[str] = []
    try:
        for topic in topology.topics:
            path = topic_path(project, topic.name)
            try:
                publisher.create_topic(
                    request=pstypes.Topic(name=path, message_retention_duration=_duration(topic.message_retention_s))
                )
                changes.append(f"created topic {path}")
            except gexc.AlreadyExists:
                pass
        for spec in topology.subscriptions:
            path = subscription_path(project, spec.name)
            desired = pstypes.Subscription(
                name=path,
                topic=topic_path(project, spec.topic),
                ack_deadline_seconds=spec.ack_deadline_s,
                message_retention_duration=_duration(spec.message_retention_s),
                retry_policy=pstypes.RetryPolicy(
                    minimum_backoff=_duration(spec.retry.minimum_backoff_s),
                    maximum_backoff=_duration(spec.retry.maximum_backoff_s),
                ),
                dead_letter_policy=(
                    pstypes.DeadLetterPolicy(
                        dead_letter_topic=topic_path(project, spec.dead_letter.topic),
                        max_delivery_attempts=spec.dead_letter.max_delivery_attempts,
                    )
                    if spec.dead_letter
                    else None
                ),
            )
            try:
                subscriber.create_subscription(request=desired)
                changes.append(f"created subscription {path}")
            except gexc.AlreadyExists:
                current = subscriber.get_subscription(subscription=path)
                if current.topic != desired.topic:
                    changes.append(f"WARNING {path} is bound to {current.topic}, expected {desired.topic}")
                    continue
                subscriber.update_subscription(
                    request=pstypes.UpdateSubscriptionRequest(
                        subscription=desired,
                        update_mask=field_mask_pb2.FieldMask(
                            paths=[
                                "ack_deadline_seconds",
                                "message_retention_duration",
                                "retry_policy",
                                "dead_letter_policy",
                            ]
                        ),
                    )
                )
    finally:
        publisher.stop()
        subscriber.close()
    return changes


def main(argv: list[str] | None = None) -> int:
    """``python -m captionqc.runtime.pubsub --project P``: apply the topology (to the emulator if
    ``PUBSUB_EMULATOR_HOST`` is set)."""
    import argparse
    import os

    parser = argparse.ArgumentParser(description="Apply captionqc's Pub/Sub topology idempotently.")
    parser.add_argument("--project", default=os.environ.get("CAPTIONQC_GCP_PROJECT", "captionqc-local"))
    args = parser.parse_args(argv)
    target = os.environ.get("PUBSUB_EMULATOR_HOST") or "Google Cloud Pub/Sub"
    for line in apply_topology(args.project):
        print(line)
    print(f"topology applied to project {args.project} on {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
