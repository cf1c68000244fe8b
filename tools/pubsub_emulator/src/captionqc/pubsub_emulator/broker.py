"""The in-memory heart of the emulator: topics, subscriptions, leases and delivery.

Everything here runs on the single asyncio event-loop thread, so there are no locks: each gRPC handler and the
background ticker call into the broker between awaits. Per subscription the broker keeps every unacked message
(`entries`, in publish order) and indexes of what can be delivered now:

* `ready` - messages without an ordering key (or on an unordered subscription), redeliveries first;
* `keyed` - one FIFO per ordering key on an ordered subscription; a key is delivered only while none of its
  messages is outstanding, which is what keeps a key in order across nacks and expiries;
* a global `delayed` heap for retry-policy backoff and a global lease heap for ack-deadline expiry.

Queues are cleaned lazily: an entry's `state` is the truth and stale queue slots are skipped when met.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import heapq
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import field_mask_pb2
from google.pubsub_v1 import types as pubsub_types

from captionqc.pubsub_emulator.errors import (
    PubSubError,
    already_exists,
    failed_precondition,
    invalid,
    not_found,
)
from captionqc.pubsub_emulator.filters import Predicate, compile_filter
from captionqc.pubsub_emulator.names import parse_project, parse_subscription, parse_topic, project_of
from captionqc.pubsub_emulator.store import Store

_LOG = logging.getLogger(__name__)

TopicPb: Any = pubsub_types.Topic.pb()
SubscriptionPb: Any = pubsub_types.Subscription.pb()
PubsubMessagePb: Any = pubsub_types.PubsubMessage.pb()

DELETED_TOPIC = "_deleted-topic_"
MAX_PUBLISH_BYTES = 10_000_000
# The 2.44 client keeps gRPC's default 4 MiB receive limit in emulator mode; a larger response is dropped by
# the client and its messages stay leased to a dead stream. Stay well under it (ack ids and framing add
# a little).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024 - 64 * 1024
PER_MESSAGE_OVERHEAD = 96
# How many messages of one ordering key may be outstanding at once. One: the client hands a key's messages to
# the callback one by one, so with more in flight a nack would let the client run the next buffered message
# before the redelivery; holding the key until its message is settled keeps the application-level order.
MAX_KEY_RUN = 1
DEFAULT_ACK_DEADLINE = 10
DEFAULT_RETENTION_S = 7 * 24 * 3600
MIN_RETENTION_S = 600
DEFAULT_MIN_BACKOFF_S = 10.0
DEFAULT_MAX_BACKOFF_S = 600.0
DEFAULT_MAX_DELIVERY_ATTEMPTS = 5
DEFAULT_EXPIRATION_TTL_S = 31 * 24 * 3600
PERMANENT_INVALID_ACK_ID = "PERMANENT_FAILURE_INVALID_ACK_ID"

_TOPIC_MUTABLE = {
    "labels",
    "message_retention_duration",
    "message_storage_policy",
    "kms_key_name",
    "schema_settings",
}
_SUBSCRIPTION_MUTABLE = {
    "ack_deadline_seconds",
    "retain_acked_messages",
    "message_retention_duration",
    "labels",
    "expiration_policy",
    "dead_letter_policy",
    "retry_policy",
    "enable_exactly_once_delivery",
    "push_config",
}


class EntryState(enum.Enum):
    READY = "ready"
    DELAYED = "delayed"
    LEASED = "leased"
    DONE = "done"


@dataclass(eq=False, slots=True)
class Entry:
    """One message as seen by one subscription."""

    seq: int
    message: Any  # google.pubsub.v1.PubsubMessage, shared by every subscription of the topic
    size: int
    publish_ts: float
    key: str
    attempts: int = 0
    state: EntryState = EntryState.READY
    ack_id: str = ""
    deadline: float = 0.0
    available_at: float = 0.0
    stream: Stream | None = None


class Stream:
    """One open StreamingPull: its lease duration, flow-control limits and what it holds right now."""

    def __init__(
        self,
        subscription: SubscriptionState,
        client_id: str,
        max_messages: int,
        max_bytes: int,
        ack_deadline: int,
    ) -> None:
        self.subscription = subscription
        self.client_id = client_id
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.ack_deadline = ack_deadline
        self.outstanding_messages = 0
        self.outstanding_bytes = 0
        self.peak_outstanding_messages = 0
        self.peak_outstanding_bytes = 0
        self.wake = asyncio.Event()
        self.closing: tuple[grpc.StatusCode, str] | None = None

    def close(self, code: grpc.StatusCode, message: str) -> None:
        self.closing = (code, message)
        self.wake.set()

    def describe(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "outstanding_messages": self.outstanding_messages,
            "outstanding_bytes": self.outstanding_bytes,
            "peak_outstanding_messages": self.peak_outstanding_messages,
            "peak_outstanding_bytes": self.peak_outstanding_bytes,
            "max_outstanding_messages": self.max_messages,
            "max_outstanding_bytes": self.max_bytes,
            "stream_ack_deadline_seconds": self.ack_deadline,
        }


@dataclass(eq=False)
class SubscriptionState:
    config: Any  # google.pubsub.v1.Subscription
    predicate: Predicate | None
    entries: dict[int, Entry] = field(default_factory=dict)
    ready: deque[Entry] = field(default_factory=deque)
    keyed: dict[str, deque[Entry]] = field(default_factory=dict)
    key_outstanding: dict[str, int] = field(default_factory=dict)
    ready_keys: deque[str] = field(default_factory=deque)
    queued_keys: set[str] = field(default_factory=set)
    leases: dict[str, Entry] = field(default_factory=dict)
    streams: set[Stream] = field(default_factory=set)
    pull_waiters: set[asyncio.Event] = field(default_factory=set)
    next_seq: int = 1
    delivered: int = 0
    acked: int = 0
    dead_lettered: int = 0
    expired: int = 0
    deleted: bool = False

    @property
    def name(self) -> str:
        return str(self.config.name)

    @property
    def ordered(self) -> bool:
        return bool(self.config.enable_message_ordering)

    @property
    def exactly_once(self) -> bool:
        return bool(self.config.enable_exactly_once_delivery)

    @property
    def has_dead_letter(self) -> bool:
        return bool(self.config.dead_letter_policy.dead_letter_topic)

    def backoff(self, attempts: int) -> float:
        """Retry-policy delay before redelivering a message nacked or expired after `attempts` deliveries."""
        if not self.config.HasField("retry_policy"):
            return 0.0
        policy = self.config.retry_policy
        low = _duration_s(policy.minimum_backoff) if policy.HasField("minimum_backoff") else DEFAULT_MIN_BACKOFF_S
        high = _duration_s(policy.maximum_backoff) if policy.HasField("maximum_backoff") else DEFAULT_MAX_BACKOFF_S
        return float(min(high, low * 2 ** max(0, attempts - 1)))

    def retention_s(self) -> float:
        if self.config.HasField("message_retention_duration"):
            return _duration_s(self.config.message_retention_duration)
        return DEFAULT_RETENTION_S

    def notify(self) -> None:
        for stream in self.streams:
            stream.wake.set()
        for waiter in self.pull_waiters:
            waiter.set()


def _duration_s(duration: Any) -> float:
    return float(duration.seconds) + float(duration.nanos) / 1e9


def _page(names: Sequence[str], page_size: int, page_token: str) -> tuple[list[str], str]:
    """Names after `page_token` (the last name of the previous page), `page_size` at a time."""
    if page_size < 0:
        raise invalid("page_size must not be negative")
    size = min(page_size or 100, 1000)
    ordered = sorted(names)
    start = 0
    if page_token:
        start = next((i for i, name in enumerate(ordered) if name > page_token), len(ordered))
    chunk = ordered[start : start + size]
    more = start + size < len(ordered)
    return chunk, (chunk[-1] if more and chunk else "")


class Broker:
    """All Pub/Sub state of one emulator process."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        self.topics: dict[str, Any] = {}
        self.topic_subscriptions: dict[str, set[str]] = {}
        self.subscriptions: dict[str, SubscriptionState] = {}
        self.next_message_id = 1
        # Ack ids carry a per-process prefix so an ack id from before a restart can never match a new lease.
        self._ack_prefix = secrets.token_hex(4)
        self._ack_counter = itertools.count(1)
        self._tiebreak = itertools.count()
        self._lease_heap: list[tuple[float, int, SubscriptionState, Entry, str]] = []
        self._delayed: list[tuple[float, int, SubscriptionState, Entry]] = []
        self._last_retention_sweep = 0.0
        if store is not None:
            self._restore(store)

    # ----------------------------------------------------------------------------------------- persistence

    def _restore(self, store: Store) -> None:
        snapshot = store.load()
        for topic in snapshot.topics:
            self.topics[topic.name] = topic
            self.topic_subscriptions[topic.name] = set()
        for config in snapshot.subscriptions:
            state = SubscriptionState(config=config, predicate=compile_filter(config.filter))
            self.subscriptions[config.name] = state
            if config.topic in self.topic_subscriptions:
                self.topic_subscriptions[config.topic].add(config.name)
        for stored in snapshot.messages:
            sub = self.subscriptions.get(stored.subscription)
            if sub is None:
                continue
            sub.next_seq = stored.seq
            self._enqueue(sub, stored.message, stored.message.ByteSize(), stored.attempts, persist=False)
        self.next_message_id = snapshot.next_message_id
        _LOG.info(
            "restored %d topics, %d subscriptions, %d unacked messages from %s",
            len(self.topics),
            len(self.subscriptions),
            len(snapshot.messages),
            store.path,
        )

    def flush(self) -> None:
        if self.store is not None:
            self.store.flush()

    # ----------------------------------------------------------------------------------------------- topics

    def create_topic(self, request: Any) -> Any:
        parse_topic(request.name)
        if request.name in self.topics:
            raise already_exists(request.name)
        topic = TopicPb()
        topic.CopyFrom(request)
        topic.state = 1  # ACTIVE
        self.topics[topic.name] = topic
        self.topic_subscriptions[topic.name] = set()
        if self.store is not None:
            self.store.put_topic(topic)
        return topic

    def get_topic(self, name: str) -> Any:
        parse_topic(name)
        topic = self.topics.get(name)
        if topic is None:
            raise not_found(name)
        return topic

    def update_topic(self, topic: Any, update_mask: Any) -> Any:
        current = self.get_topic(topic.name)
        paths = list(update_mask.paths)
        if not paths:
            raise invalid("The update_mask in the UpdateTopicRequest must be set.")
        for path in paths:
            if path.split(".")[0] not in _TOPIC_MUTABLE:
                raise invalid(
                    f"Invalid update_mask provided in the UpdateTopicRequest: '{path}' is not a mutable Topic field."
                )
        candidate = TopicPb()
        candidate.CopyFrom(current)
        field_mask_pb2.FieldMask(paths=paths).MergeMessage(
            topic, candidate, replace_message_field=True, replace_repeated_field=True
        )
        self.topics[candidate.name] = candidate
        if self.store is not None:
            self.store.put_topic(candidate)
        return candidate

    def list_topics(self, project: str, page_size: int, page_token: str) -> tuple[list[Any], str]:
        project_id = parse_project(project)
        prefix = f"projects/{project_id}/topics/"
        names, token = _page([n for n in self.topics if n.startswith(prefix)], page_size, page_token)
        return [self.topics[n] for n in names], token

    def list_topic_subscriptions(self, topic: str, page_size: int, page_token: str) -> tuple[list[str], str]:
        self.get_topic(topic)
        return _page(list(self.topic_subscriptions.get(topic, ())), page_size, page_token)

    def delete_topic(self, name: str) -> None:
        self.get_topic(name)
        del self.topics[name]
        # As in Pub/Sub, subscriptions outlive their topic and keep their backlog; they get no new messages.
        for sub_name in self.topic_subscriptions.pop(name, set()):
            sub = self.subscriptions[sub_name]
            sub.config.topic = DELETED_TOPIC
            if self.store is not None:
                self.store.put_subscription(sub.config)
        if self.store is not None:
            self.store.delete_topic(name)

    def publish(self, topic_name: str, messages: Sequence[Any]) -> list[str]:
        parse_topic(topic_name)
        if not messages:
            raise invalid("The request contains no messages.")
        total = 0
        for message in messages:
            if not message.data and not message.attributes:
                raise invalid("Some messages contain neither data nor attributes.")
            if len(message.attributes) > 100:
                raise invalid("Some messages contain more than 100 attributes.")
            for key, value in message.attributes.items():
                if not key or len(key.encode()) > 256 or key.startswith("goog"):
                    raise invalid(f"Some messages contain an invalid attribute key: {key[:64]!r}.")
                if len(value.encode()) > 1024:
                    raise invalid(f"The value of attribute {key[:64]!r} is larger than 1024 bytes.")
            if len(message.ordering_key.encode()) > 1024:
                raise invalid("An ordering key is larger than 1024 bytes.")
            total += message.ByteSize()
        if total > MAX_PUBLISH_BYTES:
            raise invalid(f"Request payload size exceeds the limit: {MAX_PUBLISH_BYTES} bytes.")
        if topic_name not in self.topics:
            raise not_found(topic_name)
        return self._publish(topic_name, messages)

    def _publish(self, topic_name: str, messages: Iterable[Any]) -> list[str]:
        subs = [self.subscriptions[n] for n in self.topic_subscriptions.get(topic_name, ())]
        live = [s for s in subs if not s.config.detached]
        ids: list[str] = []
        now_ns = time.time_ns()
        for message in messages:
            message_id = str(self.next_message_id)
            self.next_message_id += 1
            message.message_id = message_id
            message.publish_time.FromNanoseconds(now_ns)
            ids.append(message_id)
            if not live:
                continue
            size = message.ByteSize()
            for sub in live:
                # A message the filter rejects is acknowledged on arrival, as the real service does.
                if sub.predicate is None or sub.predicate(message.attributes):
                    self._enqueue(sub, message, size, 0)
        if self.store is not None:
            self.store.set_next_message_id(self.next_message_id)
        for sub in live:
            sub.notify()
        return ids

    # -------------------------------------------------------------------------------------- subscriptions

    def _validated_subscription(self, config: Any, *, creating: bool) -> Predicate | None:
        parse_subscription(config.name)
        if creating:
            parse_topic(config.topic)
            if config.topic not in self.topics:
                raise not_found(config.topic)
        if config.ack_deadline_seconds == 0:
            config.ack_deadline_seconds = DEFAULT_ACK_DEADLINE
        if not 10 <= config.ack_deadline_seconds <= 600:
            raise invalid(
                f"Invalid ack_deadline_seconds ({config.ack_deadline_seconds}): it must be between 10 and 600 seconds."
            )
        if config.HasField("message_retention_duration"):
            retention = _duration_s(config.message_retention_duration)
            if retention == 0:
                config.message_retention_duration.seconds = DEFAULT_RETENTION_S
            elif not MIN_RETENTION_S <= retention <= DEFAULT_RETENTION_S:
                raise invalid("message_retention_duration must be between 10 minutes and 7 days.")
        else:
            config.message_retention_duration.seconds = DEFAULT_RETENTION_S
        if config.HasField("retry_policy"):
            policy = config.retry_policy
            low = _duration_s(policy.minimum_backoff) if policy.HasField("minimum_backoff") else DEFAULT_MIN_BACKOFF_S
            high = _duration_s(policy.maximum_backoff) if policy.HasField("maximum_backoff") else DEFAULT_MAX_BACKOFF_S
            if not (0 <= low <= 600 and 0 <= high <= 600 and low <= high):
                raise invalid("retry_policy backoffs must be between 0 and 600 s, minimum_backoff <= maximum_backoff.")
        if config.HasField("dead_letter_policy"):
            policy = config.dead_letter_policy
            if policy.dead_letter_topic:
                parse_topic(policy.dead_letter_topic)
                if policy.dead_letter_topic not in self.topics:
                    raise not_found(policy.dead_letter_topic)
                if policy.max_delivery_attempts == 0:
                    policy.max_delivery_attempts = DEFAULT_MAX_DELIVERY_ATTEMPTS
                if not 5 <= policy.max_delivery_attempts <= 100:
                    raise invalid(
                        f"Invalid max_delivery_attempts ({policy.max_delivery_attempts}): it must be between 5 and 100."
                    )
            elif policy.max_delivery_attempts:
                raise invalid("dead_letter_policy.dead_letter_topic must be set.")
        if (
            config.push_config.push_endpoint
            or config.HasField("bigquery_config")
            or config.HasField("cloud_storage_config")
        ):
            raise PubSubError(
                grpc.StatusCode.UNIMPLEMENTED,
                "This emulator supports pull subscriptions only (no push/export).",
            )
        if not config.HasField("expiration_policy"):
            config.expiration_policy.ttl.seconds = DEFAULT_EXPIRATION_TTL_S
        return compile_filter(config.filter)

    def create_subscription(self, request: Any) -> Any:
        config = SubscriptionPb()
        config.CopyFrom(request)
        parse_subscription(config.name)
        parse_topic(config.topic)
        if config.name in self.subscriptions:
            raise already_exists(config.name)
        predicate = self._validated_subscription(config, creating=True)
        config.state = 1  # ACTIVE
        sub = SubscriptionState(config=config, predicate=predicate)
        self.subscriptions[config.name] = sub
        self.topic_subscriptions[config.topic].add(config.name)
        if self.store is not None:
            self.store.put_subscription(config)
        return config

    def subscription(self, name: str) -> SubscriptionState:
        parse_subscription(name)
        sub = self.subscriptions.get(name)
        if sub is None:
            raise not_found(name)
        return sub

    def update_subscription(self, subscription: Any, update_mask: Any) -> Any:
        sub = self.subscription(subscription.name)
        paths = list(update_mask.paths)
        if not paths:
            raise invalid("The update_mask in the UpdateSubscriptionRequest must be set.")
        for path in paths:
            if path.split(".")[0] not in _SUBSCRIPTION_MUTABLE:
                raise invalid(
                    f"Invalid update_mask provided in the UpdateSubscriptionRequest: '{path}' is not a mutable field."
                )
        candidate = SubscriptionPb()
        candidate.CopyFrom(sub.config)
        field_mask_pb2.FieldMask(paths=paths).MergeMessage(
            subscription, candidate, replace_message_field=True, replace_repeated_field=True
        )
        sub.predicate = self._validated_subscription(candidate, creating=False)
        sub.config = candidate
        if self.store is not None:
            self.store.put_subscription(candidate)
        sub.notify()
        return candidate

    def list_subscriptions(self, project: str, page_size: int, page_token: str) -> tuple[list[Any], str]:
        project_id = parse_project(project)
        prefix = f"projects/{project_id}/subscriptions/"
        names, token = _page([n for n in self.subscriptions if n.startswith(prefix)], page_size, page_token)
        return [self.subscriptions[n].config for n in names], token

    def delete_subscription(self, name: str) -> None:
        sub = self.subscription(name)
        self._drop_all(sub)
        sub.deleted = True
        del self.subscriptions[name]
        self.topic_subscriptions.get(sub.config.topic, set()).discard(name)
        for stream in list(sub.streams):
            stream.close(grpc.StatusCode.NOT_FOUND, f"Subscription does not exist (resource={name}).")
        if self.store is not None:
            self.store.delete_subscription(name)

    def detach_subscription(self, name: str) -> None:
        sub = self.subscription(name)
        sub.config.detached = True
        self._drop_all(sub)
        for stream in list(sub.streams):
            stream.close(grpc.StatusCode.FAILED_PRECONDITION, f"Subscription is detached (resource={name}).")
        if self.store is not None:
            self.store.put_subscription(sub.config)

    def _drop_all(self, sub: SubscriptionState) -> None:
        for entry in list(sub.entries.values()):
            self._remove(sub, entry)

    def pullable(self, name: str) -> SubscriptionState:
        """The subscription, if a pull on it is allowed at all."""
        sub = self.subscription(name)
        if sub.config.detached:
            raise failed_precondition(f"Subscription is detached (resource={name}).")
        return sub

    # ------------------------------------------------------------------------------------------- delivery

    def _enqueue(self, sub: SubscriptionState, message: Any, size: int, attempts: int, *, persist: bool = True) -> None:
        seq = sub.next_seq
        sub.next_seq += 1
        key = message.ordering_key if sub.ordered else ""
        publish_ts = message.publish_time.seconds + message.publish_time.nanos / 1e9
        entry = Entry(seq=seq, message=message, size=size, publish_ts=publish_ts, key=key, attempts=attempts)
        sub.entries[seq] = entry
        if key:
            queue = sub.keyed.get(key)
            if queue is None:
                queue = sub.keyed[key] = deque()
            queue.append(entry)
            if len(queue) == 1:
                self._maybe_ready_key(sub, key)
        else:
            sub.ready.append(entry)
        if persist and self.store is not None:
            self.store.put_message(sub.name, seq, message, attempts)

    def _maybe_ready_key(self, sub: SubscriptionState, key: str) -> None:
        queue = sub.keyed.get(key)
        if (
            queue
            and not sub.key_outstanding.get(key)
            and queue[0].state is EntryState.READY
            and key not in sub.queued_keys
        ):
            sub.ready_keys.append(key)
            sub.queued_keys.add(key)

    def take(self, sub: SubscriptionState, stream: Stream | None, max_messages: int, ack_deadline: int) -> list[Entry]:
        """Lease up to `max_messages` deliverable messages, within flow control and the response size cap."""
        now = time.monotonic()
        taken: list[Entry] = []
        budget = [0]  # response bytes so far; a list so the closure can update it

        def fits(entry: Entry) -> bool:
            if len(taken) >= max_messages:
                return False
            if taken and budget[0] + entry.size + PER_MESSAGE_OVERHEAD > MAX_RESPONSE_BYTES:
                return False
            if stream is not None:
                if stream.max_messages and stream.outstanding_messages >= stream.max_messages:
                    return False
                # One message over the byte limit still goes out alone, or it could never be delivered.
                if (
                    stream.max_bytes
                    and stream.outstanding_messages
                    and stream.outstanding_bytes + entry.size > stream.max_bytes
                ):
                    return False
            return True

        def lease(entry: Entry) -> None:
            budget[0] += entry.size + PER_MESSAGE_OVERHEAD
            self._lease(sub, entry, stream, now + ack_deadline)
            taken.append(entry)

        if sub.ready_keys:
            for _ in range(len(sub.ready_keys)):
                key = sub.ready_keys.popleft()
                sub.queued_keys.discard(key)
                queue = sub.keyed.get(key)
                if not queue or sub.key_outstanding.get(key) or queue[0].state is not EntryState.READY:
                    continue
                run = 0
                for entry in queue:
                    if entry.state is not EntryState.READY or run >= MAX_KEY_RUN or not fits(entry):
                        break
                    lease(entry)
                    run += 1
                if run == 0:
                    # Out of room: keep the key first in line for the next response.
                    sub.ready_keys.appendleft(key)
                    sub.queued_keys.add(key)
                    break
        ready = sub.ready
        while ready:
            entry = ready[0]
            if entry.state is not EntryState.READY:
                ready.popleft()
                continue
            if not fits(entry):
                break
            ready.popleft()
            lease(entry)
        return taken

    def _lease(self, sub: SubscriptionState, entry: Entry, stream: Stream | None, deadline: float) -> None:
        entry.attempts += 1
        entry.state = EntryState.LEASED
        # A fresh ack id per delivery: an ack for an earlier delivery must not settle this one.
        entry.ack_id = f"{self._ack_prefix}-{next(self._ack_counter)}"
        entry.deadline = deadline
        entry.stream = stream
        sub.leases[entry.ack_id] = entry
        sub.delivered += 1
        if entry.key:
            sub.key_outstanding[entry.key] = sub.key_outstanding.get(entry.key, 0) + 1
        if stream is not None:
            stream.outstanding_messages += 1
            stream.outstanding_bytes += entry.size
            stream.peak_outstanding_messages = max(stream.peak_outstanding_messages, stream.outstanding_messages)
            stream.peak_outstanding_bytes = max(stream.peak_outstanding_bytes, stream.outstanding_bytes)
        heapq.heappush(self._lease_heap, (deadline, next(self._tiebreak), sub, entry, entry.ack_id))
        if self.store is not None:
            self.store.put_message(sub.name, entry.seq, entry.message, entry.attempts)

    def _unlease(self, sub: SubscriptionState, entry: Entry) -> None:
        """Forget the current lease of `entry` (its ack id becomes stale) and give back the stream's quota."""
        sub.leases.pop(entry.ack_id, None)
        entry.ack_id = ""
        stream = entry.stream
        if stream is not None:
            stream.outstanding_messages -= 1
            stream.outstanding_bytes -= entry.size
            entry.stream = None
            stream.wake.set()
        if entry.key:
            left = sub.key_outstanding.get(entry.key, 0) - 1
            if left > 0:
                sub.key_outstanding[entry.key] = left
            else:
                sub.key_outstanding.pop(entry.key, None)

    def _remove(self, sub: SubscriptionState, entry: Entry) -> None:
        """Take `entry` out of the subscription for good (acked, dead-lettered, expired by retention)."""
        if entry.state is EntryState.LEASED:
            self._unlease(sub, entry)
        entry.state = EntryState.DONE
        sub.entries.pop(entry.seq, None)
        if entry.key:
            queue = sub.keyed.get(entry.key)
            if queue is not None:
                if queue and queue[0] is entry:
                    queue.popleft()
                else:
                    with contextlib.suppress(ValueError):
                        queue.remove(entry)
                if not queue:
                    del sub.keyed[entry.key]
                else:
                    self._maybe_ready_key(sub, entry.key)
        if self.store is not None and not sub.deleted:
            self.store.delete_message(sub.name, entry.seq)

    def _redeliver(self, sub: SubscriptionState, entry: Entry, now: float) -> None:
        """A nack or an expired lease: dead-letter, back off, or make the message deliverable again."""
        self._unlease(sub, entry)
        policy = sub.config.dead_letter_policy
        if policy.dead_letter_topic and entry.attempts >= policy.max_delivery_attempts:
            self._dead_letter(sub, entry)
            return
        if entry.key:
            # Pub/Sub redelivers a key from the nacked message on: later messages of the key that are still
            # out
            # lose their lease, so the key is redelivered in order.
            for other in sub.keyed.get(entry.key, ()):
                if other.state is EntryState.LEASED:
                    self._unlease(sub, other)
                    other.state = EntryState.READY
        delay = sub.backoff(entry.attempts)
        if delay > 0:
            entry.state = EntryState.DELAYED
            entry.available_at = now + delay
            heapq.heappush(self._delayed, (entry.available_at, next(self._tiebreak), sub, entry))
        else:
            self._make_ready(sub, entry)

    def _make_ready(self, sub: SubscriptionState, entry: Entry) -> None:
        entry.state = EntryState.READY
        if entry.key:
            self._maybe_ready_key(sub, entry.key)
        else:
            # Redeliveries go first so a nacked message is not stuck behind a long backlog.
            sub.ready.appendleft(entry)
        sub.notify()

    def _dead_letter(self, sub: SubscriptionState, entry: Entry) -> None:
        policy = sub.config.dead_letter_policy
        topic = policy.dead_letter_topic
        project, sub_id = parse_subscription(sub.name)
        if topic in self.topics:
            forwarded = PubsubMessagePb()
            forwarded.data = entry.message.data
            forwarded.attributes.update(entry.message.attributes)
            forwarded.ordering_key = entry.message.ordering_key
            forwarded.attributes["CloudPubSubDeadLetterSourceSubscription"] = sub_id
            forwarded.attributes["CloudPubSubDeadLetterSourceSubscriptionProject"] = project
            forwarded.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] = str(entry.attempts)
            forwarded.attributes["CloudPubSubDeadLetterSourceTopicPublishTime"] = (
                entry.message.publish_time.ToJsonString()
            )
            self._publish(topic, [forwarded])
        else:
            _LOG.warning("dead-letter topic %s of %s does not exist: message dropped", topic, sub.name)
        sub.dead_lettered += 1
        self._remove(sub, entry)

    def acknowledge(self, sub: SubscriptionState, ack_ids: Iterable[str]) -> dict[str, str]:
        """Settle leases; returns the ack ids that matched no live lease (reported under exactly-once)."""
        failures: dict[str, str] = {}
        for ack_id in ack_ids:
            entry = sub.leases.get(ack_id)
            if entry is None:
                failures[ack_id] = PERMANENT_INVALID_ACK_ID
                continue
            sub.acked += 1
            self._remove(sub, entry)
        return failures

    def modify_ack_deadline(self, sub: SubscriptionState, ack_ids: Iterable[str], seconds: int) -> dict[str, str]:
        """Extend leases, or nack them with 0; returns the ack ids that did not match a live lease."""
        if not 0 <= seconds <= 600:
            raise invalid(f"Invalid ack deadline given: {seconds}. It must be between 0 and 600 seconds.")
        failures: dict[str, str] = {}
        now = time.monotonic()
        for ack_id in ack_ids:
            entry = sub.leases.get(ack_id)
            if entry is None:
                failures[ack_id] = PERMANENT_INVALID_ACK_ID
                continue
            if seconds == 0:
                self._redeliver(sub, entry, now)
            else:
                entry.deadline = now + seconds
                heapq.heappush(self._lease_heap, (entry.deadline, next(self._tiebreak), sub, entry, ack_id))
        return failures

    # ------------------------------------------------------------------------------------------ the ticker

    def tick(self) -> None:
        """Expire leases, end backoffs, apply retention; called every few tens of milliseconds."""
        now = time.monotonic()
        leases = self._lease_heap
        while leases and leases[0][0] <= now:
            deadline, _, sub, entry, ack_id = heapq.heappop(leases)
            if entry.state is EntryState.LEASED and entry.ack_id == ack_id and entry.deadline == deadline:
                self._redeliver(sub, entry, now)
        delayed = self._delayed
        while delayed and delayed[0][0] <= now:
            available_at, _, sub, entry = heapq.heappop(delayed)
            if entry.state is EntryState.DELAYED and entry.available_at == available_at:
                self._make_ready(sub, entry)
        if now - self._last_retention_sweep >= 1.0:
            self._last_retention_sweep = now
            self._apply_retention()

    def _apply_retention(self) -> None:
        wall = time.time()
        for sub in self.subscriptions.values():
            cutoff = wall - sub.retention_s()
            # `entries` is in enqueue order, so the oldest unacked message is always first.
            while sub.entries:
                oldest = next(iter(sub.entries.values()))
                if oldest.publish_ts >= cutoff:
                    break
                sub.expired += 1
                self._remove(sub, oldest)

    # ------------------------------------------------------------------------------------------- streams

    def close_streams(self, subscription: str | None, code: grpc.StatusCode, message: str) -> int:
        closed = 0
        for sub in self.subscriptions.values():
            if subscription is not None and sub.name != subscription:
                continue
            for stream in list(sub.streams):
                stream.close(code, message)
                closed += 1
            for waiter in sub.pull_waiters:
                waiter.set()
        return closed

    # -------------------------------------------------------------------------------------------- state

    def state(self, project: str | None = None) -> dict[str, Any]:
        """What the admin endpoint reports: config and counters per subscription."""
        wall = time.time()
        topics = [{"name": name} for name in sorted(self.topics) if project is None or project_of(name) == project]
        subscriptions = []
        for name in sorted(self.subscriptions):
            if project is not None and project_of(name) != project:
                continue
            sub = self.subscriptions[name]
            oldest = next(iter(sub.entries.values()), None)
            policy = sub.config.dead_letter_policy
            subscriptions.append(
                {
                    "name": name,
                    "topic": sub.config.topic,
                    "backlog": len(sub.entries),
                    "outstanding": len(sub.leases),
                    "oldest_unacked_age_s": round(max(0.0, wall - oldest.publish_ts), 3) if oldest else 0.0,
                    "delivered": sub.delivered,
                    "acked": sub.acked,
                    "dead_lettered": sub.dead_lettered,
                    "expired": sub.expired,
                    "ack_deadline_seconds": sub.config.ack_deadline_seconds,
                    "dead_letter_topic": policy.dead_letter_topic or None,
                    "max_delivery_attempts": policy.max_delivery_attempts if policy.dead_letter_topic else None,
                    "enable_message_ordering": sub.ordered,
                    "enable_exactly_once_delivery": sub.exactly_once,
                    "filter": sub.config.filter,
                    "detached": bool(sub.config.detached),
                    "streams": [stream.describe() for stream in sub.streams],
                }
            )
        return {"topics": topics, "subscriptions": subscriptions}
