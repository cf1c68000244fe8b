"""Process-level behaviour: --data-dir persistence across restarts, clean SIGTERM/SIGINT, vanished clients."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.cloud import pubsub_v1
from google.protobuf import duration_pb2
from google.pubsub_v1 import types as pubsub_types

from captionqc.pubsub_emulator.testing import EmulatorProcess, start_emulator, wait_until

PROJECT = "persist-test"
TOPIC = f"projects/{PROJECT}/topics/jobs"
DEAD_LETTER_TOPIC = f"projects/{PROJECT}/topics/jobs-dead-letter"
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/ocr"
LIVE_SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/status"


@pytest.fixture
def own_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorProcess]:
    with start_emulator(tmp_path / "pubsub") as process:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", process.host)
        yield process


def test_restart_with_data_dir_keeps_config_and_unacked_messages(own_emulator: EmulatorProcess) -> None:
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    streaming: Any = None
    try:
        publisher.create_topic(name=TOPIC)
        publisher.create_topic(name=DEAD_LETTER_TOPIC)
        subscriber.create_subscription(
            request={
                "name": SUBSCRIPTION,
                "topic": TOPIC,
                "ack_deadline_seconds": 30,
                "dead_letter_policy": {"dead_letter_topic": DEAD_LETTER_TOPIC, "max_delivery_attempts": 7},
                "retry_policy": {"minimum_backoff": duration_pb2.Duration(seconds=1)},
                "filter": "attributes:job",
            }
        )
        subscriber.create_subscription(request={"name": LIVE_SUBSCRIPTION, "topic": TOPIC})
        ids = [publisher.publish(TOPIC, f"job {i}".encode(), job=str(i)).result(timeout=10) for i in range(20)]

        pulled = subscriber.pull(subscription=SUBSCRIPTION, max_messages=5, timeout=10).received_messages
        assert len(pulled) == 5
        subscriber.acknowledge(subscription=SUBSCRIPTION, ack_ids=[m.ack_id for m in pulled[:3]])
        # Two stay leased across the restart: leases do not survive it, so they come back.
        acked = {m.message.message_id for m in pulled[:3]}

        live: set[str] = set()
        lock = threading.Lock()

        def on_live(message: Any) -> None:
            with lock:
                live.add(message.message_id)
            message.ack()

        streaming = subscriber.subscribe(LIVE_SUBSCRIPTION, on_live)
        wait_until(lambda: len(live) == 20)

        own_emulator.restart()
        assert own_emulator.last_returncode == 0

        config = subscriber.get_subscription(subscription=SUBSCRIPTION)
        assert config.ack_deadline_seconds == 30
        assert config.dead_letter_policy.max_delivery_attempts == 7
        assert config.retry_policy.minimum_backoff.seconds == 1
        assert config.filter == "attributes:job"
        state = own_emulator.subscription_state(SUBSCRIPTION)
        assert state["backlog"] == 17
        assert state["outstanding"] == 0

        remaining: dict[str, Any] = {}
        for _ in range(20):
            batch = subscriber.pull(subscription=SUBSCRIPTION, max_messages=100, timeout=10).received_messages
            remaining.update({m.message.message_id: m for m in batch})
            if len(remaining) >= 17:
                break
        assert set(remaining) == set(ids) - acked
        assert all(m.message.attributes["job"] for m in remaining.values())
        # The two leased before the restart count a second delivery attempt (the subscription dead-letters).
        attempts = sorted(m.delivery_attempt for m in remaining.values())
        assert attempts == [1] * 15 + [2, 2]

        # The streaming subscriber saw the shutdown as UNAVAILABLE and reconnected on its own.
        new_id = publisher.publish(TOPIC, b"after restart", job="x").result(timeout=10)
        wait_until(lambda: new_id in live, timeout=30)
        assert not streaming.done()
        # New message ids never reuse old ones.
        assert new_id not in ids
    finally:
        if streaming is not None:
            streaming.cancel()
        subscriber.close()
        publisher.stop()
    assert "shutting down" in own_emulator.stderr_text()


def test_sigint_stops_cleanly_and_memory_mode_starts_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    with start_emulator() as process:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", process.host)
        publisher = pubsub_v1.PublisherClient()
        publisher.create_topic(name=TOPIC)
        process.stop(signal.SIGINT)
        assert process.last_returncode == 0
        process.start()
        assert process.state()["topics"] == []
        publisher.stop()


def test_leases_of_a_vanished_stream_expire_at_their_deadline(
    pubsub_env: EmulatorProcess, project: str, publisher: pubsub_v1.PublisherClient
) -> None:
    topic = f"projects/{project}/topics/events"
    subscription = f"projects/{project}/subscriptions/worker"
    publisher.create_topic(name=topic)
    subscriber = pubsub_v1.SubscriberClient()
    subscriber.create_subscription(name=subscription, topic=topic)
    subscriber.close()
    publisher.publish(topic, b"orphaned").result(timeout=10)

    request_cls: Any = pubsub_types.StreamingPullRequest.pb()
    response_cls: Any = pubsub_types.StreamingPullResponse.pb()
    with grpc.insecure_channel(pubsub_env.host) as channel:
        call = channel.stream_stream(
            "/google.pubsub.v1.Subscriber/StreamingPull",
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )

        def requests() -> Iterator[Any]:
            yield request_cls(subscription=subscription, stream_ack_deadline_seconds=10, client_id="vanishing")
            time.sleep(30)  # never reached: the call is cancelled first

        responses = call(requests(), timeout=30)
        first = next(responses)
        assert len(first.received_messages) == 1
        responses.cancel()  # the client goes away without acking
    assert pubsub_env.subscription_state(subscription)["outstanding"] == 1
    started = time.monotonic()
    wait_until(lambda: pubsub_env.subscription_state(subscription)["outstanding"] == 0, timeout=15)
    assert time.monotonic() - started > 7  # held until the 10 s stream deadline, not dropped at once
    assert pubsub_env.subscription_state(subscription)["backlog"] == 1


def test_malformed_requests_get_errors_not_crashes(pubsub_env: EmulatorProcess, project: str) -> None:
    with grpc.insecure_channel(pubsub_env.host) as channel:
        raw = channel.unary_unary("/google.pubsub.v1.Publisher/Publish")
        with pytest.raises(grpc.RpcError) as garbage:
            raw(b"\xff\xff\xff\xff", timeout=10)
        assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        request_cls: Any = pubsub_types.StreamingPullRequest.pb()
        stream = channel.stream_stream(
            "/google.pubsub.v1.Subscriber/StreamingPull", request_serializer=request_cls.SerializeToString
        )
        bad_first_requests = [
            request_cls(subscription="not-a-name", stream_ack_deadline_seconds=10),
            request_cls(subscription=f"projects/{project}/subscriptions/missing", stream_ack_deadline_seconds=10),
            request_cls(subscription=f"projects/{project}/subscriptions/missing", stream_ack_deadline_seconds=5),
        ]
        expected = [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.NOT_FOUND]
        for request, code in zip(bad_first_requests, expected, strict=True):
            with pytest.raises(grpc.RpcError) as error:
                list(stream(iter([request]), timeout=10))
            assert error.value.code() == code
    assert pubsub_env.state()["topics"] is not None  # still serving
