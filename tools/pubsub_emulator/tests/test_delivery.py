"""Delivery semantics through the official client's streaming subscriber, checked against the emulator's state."""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.subscriber.exceptions import AcknowledgeError, AcknowledgeStatus
from google.protobuf import duration_pb2

from captionqc.pubsub_emulator.testing import EmulatorProcess, wait_until


def test_10000_messages_with_attributes_are_each_acked_exactly_once(
    pubsub_env: EmulatorProcess,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
    stop_streaming: Callable[[Any], None],
) -> None:
    topic = make_topic()
    subscription = make_subscription(topic)
    count = 10_000
    futures = [publisher.publish(topic, b"x" * 200, seq=str(i), kind="bulk") for i in range(count)]
    published = {f.result(timeout=30) for f in futures}
    assert len(published) == count

    lock = threading.Lock()
    seen: dict[str, int] = defaultdict(int)
    bad_attributes: list[dict[str, str]] = []

    def callback(message: Any) -> None:
        with lock:
            seen[message.message_id] += 1
            if message.attributes.get("kind") != "bulk" or "seq" not in message.attributes:
                bad_attributes.append(dict(message.attributes))
        message.ack()

    future = subscriber.subscribe(subscription, callback)
    try:
        wait_until(lambda: len(seen) >= count, timeout=60)
        wait_until(lambda: pubsub_env.subscription_state(subscription)["acked"] >= count, timeout=20)
    finally:
        stop_streaming(future)
    state = pubsub_env.subscription_state(subscription)
    assert set(seen) == published
    assert max(seen.values()) == 1
    assert not bad_attributes
    assert state["acked"] == count
    assert state["delivered"] == count  # nothing was redelivered
    assert state["backlog"] == 0
    assert state["outstanding"] == 0


def test_nacked_message_is_redelivered(
    pubsub_env: EmulatorProcess,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
    stop_streaming: Callable[[Any], None],
) -> None:
    topic = make_topic()
    subscription = make_subscription(topic)
    message_id = publisher.publish(topic, b"retry me").result(timeout=10)
    deliveries: list[float] = []

    def callback(message: Any) -> None:
        deliveries.append(time.monotonic())
        if len(deliveries) == 1:
            message.nack()
        else:
            message.ack()

    future = subscriber.subscribe(subscription, callback)
    try:
        wait_until(lambda: pubsub_env.subscription_state(subscription)["acked"] == 1, timeout=20)
    finally:
        stop_streaming(future)
    state = pubsub_env.subscription_state(subscription)
    assert message_id
    assert len(deliveries) == 2
    assert deliveries[1] - deliveries[0] < 2.0  # no retry policy: redelivered at once
    assert state["delivered"] == 2
    assert state["backlog"] == 0


def test_expired_lease_is_redelivered_with_a_new_ack_id(
    pubsub_env: EmulatorProcess,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
) -> None:
    topic = make_topic()
    subscription = make_subscription(topic)
    publisher.publish(topic, b"slow consumer").result(timeout=10)

    first = subscriber.pull(subscription=subscription, max_messages=1, timeout=10).received_messages
    assert len(first) == 1
    # Shorten the lease to 1 s instead of waiting out the 10 s default.
    subscriber.modify_ack_deadline(subscription=subscription, ack_ids=[first[0].ack_id], ack_deadline_seconds=1)
    assert pubsub_env.subscription_state(subscription)["outstanding"] == 1

    wait_until(lambda: pubsub_env.subscription_state(subscription)["outstanding"] == 0, timeout=5)
    second = subscriber.pull(subscription=subscription, max_messages=1, timeout=10).received_messages
    assert len(second) == 1
    assert second[0].message.message_id == first[0].message.message_id
    assert second[0].ack_id != first[0].ack_id

    # The stale ack id settles nothing; the fresh one does.
    subscriber.acknowledge(subscription=subscription, ack_ids=[first[0].ack_id])
    assert pubsub_env.subscription_state(subscription)["backlog"] == 1
    subscriber.acknowledge(subscription=subscription, ack_ids=[second[0].ack_id])
    state = pubsub_env.subscription_state(subscription)
    assert state["backlog"] == 0
    assert state["delivered"] == 2


def test_retry_policy_backs_off_exponentially(
    pubsub_env: EmulatorProcess,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
    stop_streaming: Callable[[Any], None],
) -> None:
    topic = make_topic()
    retry = {
        "minimum_backoff": duration_pb2.Duration(nanos=400_000_000),
        "maximum_backoff": duration_pb2.Duration(seconds=1, nanos=200_000_000),
    }
    subscription = make_subscription(topic, retry_policy=retry)
    publisher.publish(topic, b"flaky").result(timeout=10)
    deliveries: list[float] = []

    def callback(message: Any) -> None:
        deliveries.append(time.monotonic())
        if len(deliveries) < 5:
            message.nack()
        else:
            message.ack()

    future = subscriber.subscribe(subscription, callback)
    try:
        wait_until(lambda: pubsub_env.subscription_state(subscription)["acked"] == 1, timeout=20)
    finally:
        stop_streaming(future)
    gaps = [later - earlier for earlier, later in itertools.pairwise(deliveries)]
    # 0.4 s, then doubling, capped at 1.2 s: 0.4, 0.8, 1.2, 1.2. The slack covers the client's own latency
    # on a busy machine; redelivery without backoff would show gaps of a few milliseconds.
    for gap, expected in zip(gaps, [0.4, 0.8, 1.2, 1.2], strict=True):
        assert expected - 0.2 <= gap <= expected + 1.5, gaps


def test_dead_letter_after_max_delivery_attempts(
    pubsub_env: EmulatorProcess,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
    stop_streaming: Callable[[Any], None],
    project: str,
) -> None:
    topic = make_topic()
    dead_letter_topic = make_topic("events-dead-letter")
    dead_letters = make_subscription(dead_letter_topic, name="dead-letter-audit")
    subscription = make_subscription(
        topic, dead_letter_policy={"dead_letter_topic": dead_letter_topic, "max_delivery_attempts": 5}
    )
    publisher.publish(topic, b"poison", origin="test").result(timeout=10)
    attempts: list[int] = []

    def always_nack(message: Any) -> None:
        attempts.append(message.delivery_attempt)
        message.nack()

    future = subscriber.subscribe(subscription, always_nack)
    try:
        wait_until(lambda: pubsub_env.subscription_state(subscription)["dead_lettered"] == 1, timeout=20)
    finally:
        stop_streaming(future)
    assert attempts == [1, 2, 3, 4, 5]
    state = pubsub_env.subscription_state(subscription)
    assert state["backlog"] == 0
    assert state["dead_letter_topic"] == dead_letter_topic
    assert state["max_delivery_attempts"] == 5

    received = subscriber.pull(subscription=dead_letters, max_messages=10, timeout=10).received_messages
    assert len(received) == 1
    forwarded = received[0].message
    assert forwarded.data == b"poison"
    assert forwarded.attributes["origin"] == "test"
    assert forwarded.attributes["CloudPubSubDeadLetterSourceSubscription"] == "worker"
    assert forwarded.attributes["CloudPubSubDeadLetterSourceSubscriptionProject"] == project
    assert forwarded.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    # Subscriptions without a dead-letter policy get delivery_attempt 0, as from the real service.
    assert received[0].delivery_attempt == 0


def test_ordering_per_key_is_kept_across_nacks(
    pubsub_env: EmulatorProcess,
    ordered_publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
    stop_streaming: Callable[[Any], None],
) -> None:
    topic = make_topic()
    subscription = make_subscription(topic, enable_message_ordering=True)
    keys, per_key = ["alpha", "beta", "gamma"], 30
    futures = [
        ordered_publisher.publish(topic, f"{key}:{i}".encode(), ordering_key=key)
        for i in range(per_key)
        for key in keys
    ]
    for f in futures:
        f.result(timeout=10)

    lock = threading.Lock()
    log: dict[str, list[tuple[int, bool]]] = defaultdict(list)  # per key: (position, acked?) per delivery
    nacked_once: set[tuple[str, int]] = set()

    def callback(message: Any) -> None:
        key, index = message.data.decode().split(":")
        position = int(index)
        with lock:
            # Nack every 7th message the first time it is seen.
            nack = position % 7 == 3 and (key, position) not in nacked_once
            if nack:
                nacked_once.add((key, position))
            log[key].append((position, not nack))
        if nack:
            message.nack()
        else:
            message.ack()

    future = subscriber.subscribe(subscription, callback)
    try:
        wait_until(lambda: pubsub_env.subscription_state(subscription)["acked"] >= len(keys) * per_key, timeout=40)
    finally:
        stop_streaming(future)
    for key in keys:
        # Strictly in order: every delivery is the first message of the key not yet acked, so a nacked message
        # comes back before anything after it.
        acked_so_far = 0
        for position, was_acked in log[key]:
            assert position == acked_so_far, (key, log[key])
            acked_so_far += was_acked
        assert acked_so_far == per_key
    assert len(nacked_once) > 0


def test_exactly_once_reports_success_and_invalid_ack_id(
    pubsub_env: EmulatorProcess,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
    stop_streaming: Callable[[Any], None],
) -> None:
    topic = make_topic()
    subscription = make_subscription(topic, enable_exactly_once_delivery=True)
    publisher.publish(topic, b"once").result(timeout=10)
    results: list[str] = []
    done = threading.Event()

    def callback(message: Any) -> None:
        if not results:
            # Nack this delivery, then try to ack it: its ack id is no longer leased.
            results.append(message.nack_with_response().result(timeout=10).name)
            try:
                message.ack_with_response().result(timeout=10)
                results.append("SUCCESS")
            except AcknowledgeError as error:
                results.append(error.error_code.name)
            return
        results.append(message.ack_with_response().result(timeout=10).name)
        done.set()

    future = subscriber.subscribe(subscription, callback)
    try:
        assert done.wait(timeout=30)
    finally:
        stop_streaming(future)
    assert results == [AcknowledgeStatus.SUCCESS.name, AcknowledgeStatus.INVALID_ACK_ID.name, "SUCCESS"]
    state = pubsub_env.subscription_state(subscription)
    assert state["acked"] == 1
    assert state["delivered"] == 2
    assert state["backlog"] == 0
    assert state["enable_exactly_once_delivery"] is True


def test_flow_control_is_never_exceeded(
    pubsub_env: EmulatorProcess,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
    stop_streaming: Callable[[Any], None],
) -> None:
    topic = make_topic()
    subscription = make_subscription(topic)
    for f in [publisher.publish(topic, b"y" * 100) for _ in range(300)]:
        f.result(timeout=10)
    received: list[str] = []
    peaks: list[int] = []

    def callback(message: Any) -> None:
        received.append(message.message_id)
        time.sleep(0.002)
        message.ack()

    future = subscriber.subscribe(subscription, callback, flow_control=pubsub_v1.types.FlowControl(max_messages=7))
    try:

        def sample() -> bool:
            state = pubsub_env.subscription_state(subscription)
            peaks.append(state["outstanding"])
            return state["acked"] >= 300

        wait_until(sample, timeout=40, interval=0.01)
        streams = pubsub_env.subscription_state(subscription)["streams"]
    finally:
        stop_streaming(future)
    assert len(set(received)) == 300
    assert streams
    assert all(s["max_outstanding_messages"] == 7 for s in streams)
    assert all(s["peak_outstanding_messages"] <= 7 for s in streams)
    assert max(peaks) <= 7


def test_1000_messages_of_10kb_are_all_delivered_under_the_response_cap(
    pubsub_env: EmulatorProcess,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
    stop_streaming: Callable[[Any], None],
) -> None:
    topic = make_topic()
    subscription = make_subscription(topic)
    payload = b"z" * 10_240
    for f in [publisher.publish(topic, payload) for _ in range(1000)]:
        f.result(timeout=20)
    received: set[str] = set()

    def callback(message: Any) -> None:
        assert len(message.data) == len(payload)
        received.add(message.message_id)
        message.ack()

    future = subscriber.subscribe(subscription, callback)
    try:
        wait_until(lambda: pubsub_env.subscription_state(subscription)["acked"] >= 1000, timeout=30)
    finally:
        stop_streaming(future)
    assert len(received) == 1000
    # A response over 4 MiB would have been dropped by the client and redelivered after the lease ran out.
    assert pubsub_env.subscription_state(subscription)["delivered"] == 1000


def test_subscriber_keeps_receiving_after_a_forced_stream_close(
    pubsub_env: EmulatorProcess,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
    stop_streaming: Callable[[Any], None],
) -> None:
    topic = make_topic()
    subscription = make_subscription(topic)
    received: set[bytes] = set()

    def callback(message: Any) -> None:
        received.add(message.data)
        message.ack()

    future = subscriber.subscribe(subscription, callback)
    try:
        for i in range(20):
            publisher.publish(topic, f"before-{i}".encode()).result(timeout=10)
        wait_until(lambda: len(received) == 20)
        assert pubsub_env.close_streams(subscription) >= 1
        for i in range(20):
            publisher.publish(topic, f"after-{i}".encode()).result(timeout=10)
        wait_until(lambda: len(received) == 40, timeout=30)
        assert not future.done()
        wait_until(lambda: len(pubsub_env.subscription_state(subscription)["streams"]) >= 1)
    finally:
        stop_streaming(future)
