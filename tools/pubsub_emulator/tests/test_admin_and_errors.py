"""The admin API, filters, listing, and the gRPC error codes the real service gives for bad requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import pubsub_v1
from google.pubsub_v1 import PublisherClient as GapicPublisher
from google.pubsub_v1.types import PubsubMessage

from captionqc.pubsub_emulator.testing import EmulatorProcess


def test_admin_endpoint_reports_topics_and_subscriptions(
    pubsub_env: EmulatorProcess,
    publisher: pubsub_v1.PublisherClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
    project: str,
) -> None:
    topic = make_topic()
    subscription = make_subscription(topic, ack_deadline_seconds=30)
    for f in [publisher.publish(topic, b"waiting") for _ in range(3)]:
        f.result(timeout=10)
    with urllib.request.urlopen(pubsub_env.admin_url + "/healthz", timeout=5) as response:
        assert response.status == 200
    state = pubsub_env.state(project)
    assert state["topics"] == [{"name": topic}]
    [sub] = state["subscriptions"]
    assert sub["name"] == subscription
    assert sub["topic"] == topic
    assert sub["backlog"] == 3
    assert sub["outstanding"] == 0
    assert sub["oldest_unacked_age_s"] >= 0
    assert sub["ack_deadline_seconds"] == 30
    assert sub["dead_letter_topic"] is None
    expected_keys = {
        "name", "topic", "backlog", "outstanding", "oldest_unacked_age_s", "delivered", "acked",
        "dead_lettered", "ack_deadline_seconds", "dead_letter_topic", "max_delivery_attempts",
    }  # fmt: skip
    assert expected_keys <= set(sub)
    # Other projects' resources stay out of a filtered view.
    assert all(t["name"].startswith(f"projects/{project}/") for t in pubsub_env.state(project)["topics"])
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(pubsub_env.admin_url + "/nope", timeout=5)
    assert missing.value.code == 404
    assert json.loads(missing.value.read())["error"]


def test_filter_delivers_only_matching_messages(
    pubsub_env: EmulatorProcess,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
) -> None:
    topic = make_topic()
    subscription = make_subscription(
        topic, filter='attributes.kind = "ocr" AND NOT attributes:skip AND hasPrefix(attributes.tenant, "acme")'
    )
    cases = [
        ({"kind": "ocr", "tenant": "acme-1"}, True),
        ({"kind": "ocr", "tenant": "acme-2", "skip": "1"}, False),
        ({"kind": "asr", "tenant": "acme-1"}, False),
        ({"kind": "ocr", "tenant": "other"}, False),
        ({"kind": "ocr", "tenant": "acme"}, True),
    ]
    for attributes, _ in cases:
        publisher.publish(topic, b"m", **attributes).result(timeout=10)
    received = subscriber.pull(subscription=subscription, max_messages=10, timeout=10).received_messages
    got = sorted(m.message.attributes["tenant"] for m in received)
    assert got == sorted(a["tenant"] for a, wanted in cases if wanted)
    assert pubsub_env.subscription_state(subscription)["backlog"] == 2


def test_list_topics_and_subscriptions_page_through_everything(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
    project: str,
) -> None:
    topics = [make_topic(f"topic-{i}") for i in range(5)]
    subs = [make_subscription(topics[0], name=f"sub-{i}") for i in range(3)]
    listed = [t.name for t in publisher.list_topics(request={"project": f"projects/{project}", "page_size": 2})]
    assert listed == sorted(topics)
    listed_subs = [
        s.name for s in subscriber.list_subscriptions(request={"project": f"projects/{project}", "page_size": 2})
    ]
    assert listed_subs == sorted(subs)
    assert sorted(publisher.list_topic_subscriptions(request={"topic": topics[0], "page_size": 1})) == sorted(subs)
    assert list(publisher.list_topic_subscriptions(request={"topic": topics[1]})) == []


def test_update_and_delete(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
) -> None:
    topic = make_topic()
    subscription = make_subscription(topic)
    updated = subscriber.update_subscription(
        request={
            "subscription": {"name": subscription, "ack_deadline_seconds": 42},
            "update_mask": {"paths": ["ack_deadline_seconds"]},
        }
    )
    assert updated.ack_deadline_seconds == 42
    assert subscriber.get_subscription(subscription=subscription).ack_deadline_seconds == 42
    labelled = publisher.update_topic(
        request={"topic": {"name": topic, "labels": {"team": "qc"}}, "update_mask": {"paths": ["labels"]}}
    )
    assert dict(labelled.labels) == {"team": "qc"}
    publisher.delete_topic(topic=topic)
    # As in Pub/Sub, the subscription survives its topic.
    assert subscriber.get_subscription(subscription=subscription).topic == "_deleted-topic_"
    subscriber.delete_subscription(subscription=subscription)
    with pytest.raises(exceptions.NotFound):
        subscriber.get_subscription(subscription=subscription)


def _code(error: pytest.ExceptionInfo[exceptions.GoogleAPICallError]) -> grpc.StatusCode:
    return error.value.grpc_status_code  # type: ignore[return-value]


def test_error_codes(
    pubsub_env: EmulatorProcess,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    make_topic: Callable[..., str],
    make_subscription: Callable[..., str],
    project: str,
) -> None:
    topic = make_topic()
    subscription = make_subscription(topic)
    missing_topic = f"projects/{project}/topics/missing"
    gapic = GapicPublisher()
    no_retry: dict[str, Any] = {"retry": None, "timeout": 10}

    # NOT_FOUND
    with pytest.raises(exceptions.NotFound):
        publisher.get_topic(topic=missing_topic)
    with pytest.raises(exceptions.NotFound):
        gapic.publish(topic=missing_topic, messages=[PubsubMessage(data=b"x")], **no_retry)
    with pytest.raises(exceptions.NotFound):
        make_subscription(missing_topic, name="orphan")
    with pytest.raises(exceptions.NotFound):
        subscriber.get_subscription(subscription=f"projects/{project}/subscriptions/missing")
    with pytest.raises(exceptions.NotFound):
        make_subscription(topic, name="dlq-missing", dead_letter_policy={"dead_letter_topic": missing_topic})

    # ALREADY_EXISTS
    with pytest.raises(exceptions.AlreadyExists):
        publisher.create_topic(name=topic)
    with pytest.raises(exceptions.AlreadyExists):
        make_subscription(topic)

    # INVALID_ARGUMENT
    for bad_name in ["projects/x/topics/ab", "projects/x/topics/goog-reserved", "topics/plain", "projects//topics/abc"]:
        with pytest.raises(exceptions.InvalidArgument):
            publisher.create_topic(name=bad_name)
    with pytest.raises(exceptions.InvalidArgument):
        gapic.publish(topic=topic, messages=[], **no_retry)
    with pytest.raises(exceptions.InvalidArgument):
        gapic.publish(topic=topic, messages=[PubsubMessage(data=b"x" * 10_000_001)], **no_retry)
    with pytest.raises(exceptions.InvalidArgument):
        gapic.publish(topic=topic, messages=[PubsubMessage()], **no_retry)
    for attempts in (4, 101):
        with pytest.raises(exceptions.InvalidArgument):
            make_subscription(
                topic,
                name=f"dlq-{attempts}",
                dead_letter_policy={"dead_letter_topic": topic, "max_delivery_attempts": attempts},
            )
    for deadline in (5, 601):
        with pytest.raises(exceptions.InvalidArgument):
            make_subscription(topic, name=f"deadline-{deadline}", ack_deadline_seconds=deadline)
    with pytest.raises(exceptions.InvalidArgument):
        make_subscription(topic, name="bad-filter", filter='attributes.kind == "x"')
    with pytest.raises(exceptions.InvalidArgument):
        make_subscription(topic, name="mixed-filter", filter="attributes:a AND attributes:b OR attributes:c")
    publisher.publish(topic, b"lease me").result(timeout=10)
    [received] = subscriber.pull(subscription=subscription, max_messages=1, timeout=10).received_messages
    for deadline in (-1, 601):
        with pytest.raises(exceptions.InvalidArgument):
            subscriber.modify_ack_deadline(
                subscription=subscription, ack_ids=[received.ack_id], ack_deadline_seconds=deadline, **no_retry
            )
    with pytest.raises(exceptions.InvalidArgument):
        subscriber.pull(subscription=subscription, max_messages=0, **no_retry)
    with pytest.raises(exceptions.InvalidArgument):
        subscriber.update_subscription(
            request={
                "subscription": {"name": subscription, "filter": "attributes:x"},
                "update_mask": {"paths": ["filter"]},
            }
        )
    with pytest.raises(exceptions.InvalidArgument):
        subscriber.update_subscription(request={"subscription": {"name": subscription}, "update_mask": {"paths": []}})

    # FAILED_PRECONDITION: pulling from a detached subscription.
    publisher.detach_subscription(request={"subscription": subscription})
    with pytest.raises(exceptions.FailedPrecondition):
        subscriber.pull(subscription=subscription, max_messages=1, **no_retry)
    assert pubsub_env.subscription_state(subscription)["detached"] is True
    # The emulator is still healthy after all of that.
    assert pubsub_env.state(project)["topics"]
