"""The gRPC edge: the google.pubsub.v1 Publisher and Subscriber services, mapped onto the broker.

There is no protoc-generated servicer to subclass, so handlers are registered by method name with generic
handlers, using the protobuf classes that google-cloud-pubsub ships (`google.pubsub_v1.types.<Name>.pb()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import any_pb2, empty_pb2
from google.protobuf.message import DecodeError
from google.pubsub_v1 import types as pubsub_types
from google.rpc import error_details_pb2, status_pb2

from captionqc.pubsub_emulator.broker import PERMANENT_INVALID_ACK_ID, Broker, Entry, Stream, SubscriptionState
from captionqc.pubsub_emulator.errors import PubSubError, invalid

_LOG = logging.getLogger(__name__)

_Empty: Any = empty_pb2.Empty

# How long a unary Pull with return_immediately=false waits for a message before answering empty.
PULL_WAIT_S = 10.0
# Any value starting with TRANSIENT_ makes the client retry that ack id; this one names why.
RETRY_ALONE = "TRANSIENT_FAILURE_BATCHED_WITH_INVALID_ACK_ID"
_INVALID_ACK_IDS = (
    "Some acknowledgement ids in the request were invalid. This could be because the acknowledgement ids "
    "have expired or the acknowledgement ids were malformed."
)


def _pb(name: str) -> Any:
    return getattr(pubsub_types, name).pb()


class _Malformed:
    """Stands in for a request whose bytes do not parse, so the handler can answer INVALID_ARGUMENT."""


MALFORMED = _Malformed()
_MALFORMED_MESSAGE = "Invalid request: the request message could not be parsed."


def _parser(name: str) -> Callable[[bytes], Any]:
    # gRPC answers UNKNOWN when a deserializer raises; the real service answers INVALID_ARGUMENT.
    cls = _pb(name)

    def parse(data: bytes) -> Any:
        try:
            return cls.FromString(data)
        except DecodeError:
            return MALFORMED

    return parse


Handler = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


def _exactly_once_trailer(code: grpc.StatusCode, message: str, failures: Mapping[str, str]) -> tuple[Any, ...]:
    """The `grpc-status-details-bin` trailer the client reads per-ack-id results from.

    Its code and message must equal the call's own status exactly, or google-api-core refuses it with
    `ValueError: Message in Status proto … doesn't match status details` and the ack futures never resolve.
    """
    info = error_details_pb2.ErrorInfo(
        reason="EXACTLY_ONCE_ACKID_FAILURE", domain="pubsub.googleapis.com", metadata=dict(failures)
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    # google.rpc.Code numbers are the gRPC status numbers.
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return (("grpc-status-details-bin", status.SerializeToString()),)


def _fill(received: Any, entries: list[Entry], with_attempts: bool) -> None:
    for entry in entries:
        item = received.add()
        item.ack_id = entry.ack_id
        item.message.CopyFrom(entry.message)
        # The client shows delivery_attempt only for dead-letter subscriptions; the service sends 0 otherwise.
        if with_attempts:
            item.delivery_attempt = entry.attempts


class PubSubService:
    """Publisher and Subscriber RPCs over one broker."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.shutting_down = False

    # --------------------------------------------------------------------------------------- registration

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        b = self.broker

        def unary(fn: Handler, request: str, response: str | None) -> grpc.RpcMethodHandler:
            response_cls: Any = _Empty if response is None else _pb(response)
            return grpc.unary_unary_rpc_method_handler(
                self._guard(fn),
                request_deserializer=_parser(request),
                response_serializer=response_cls.SerializeToString,
            )

        publisher = {
            "CreateTopic": unary(self._create_topic, "Topic", "Topic"),
            "GetTopic": unary(self._sync(lambda r: b.get_topic(r.topic)), "GetTopicRequest", "Topic"),
            "UpdateTopic": unary(
                self._sync(lambda r: b.update_topic(r.topic, r.update_mask)), "UpdateTopicRequest", "Topic"
            ),
            "ListTopics": unary(self._list_topics, "ListTopicsRequest", "ListTopicsResponse"),
            "ListTopicSubscriptions": unary(
                self._list_topic_subscriptions,
                "ListTopicSubscriptionsRequest",
                "ListTopicSubscriptionsResponse",
            ),
            "ListTopicSnapshots": unary(
                self._list_topic_snapshots, "ListTopicSnapshotsRequest", "ListTopicSnapshotsResponse"
            ),
            "DeleteTopic": unary(self._sync(lambda r: b.delete_topic(r.topic)), "DeleteTopicRequest", None),
            "DetachSubscription": unary(
                self._detach_subscription, "DetachSubscriptionRequest", "DetachSubscriptionResponse"
            ),
            "Publish": unary(self._publish, "PublishRequest", "PublishResponse"),
        }
        subscriber = {
            "CreateSubscription": unary(self._create_subscription, "Subscription", "Subscription"),
            "GetSubscription": unary(
                self._sync(lambda r: b.subscription(r.subscription).config),
                "GetSubscriptionRequest",
                "Subscription",
            ),
            "UpdateSubscription": unary(
                self._sync(lambda r: b.update_subscription(r.subscription, r.update_mask)),
                "UpdateSubscriptionRequest",
                "Subscription",
            ),
            "ListSubscriptions": unary(
                self._list_subscriptions, "ListSubscriptionsRequest", "ListSubscriptionsResponse"
            ),
            "DeleteSubscription": unary(
                self._sync(lambda r: b.delete_subscription(r.subscription)), "DeleteSubscriptionRequest", None
            ),
            "Pull": unary(self._pull, "PullRequest", "PullResponse"),
            "Acknowledge": unary(self._acknowledge, "AcknowledgeRequest", None),
            "ModifyAckDeadline": unary(self._modify_ack_deadline, "ModifyAckDeadlineRequest", None),
            "StreamingPull": grpc.stream_stream_rpc_method_handler(
                self._streaming_pull,
                request_deserializer=_parser("StreamingPullRequest"),
                response_serializer=_pb("StreamingPullResponse").SerializeToString,
            ),
        }
        return [
            grpc.method_handlers_generic_handler("google.pubsub.v1.Publisher", publisher),
            grpc.method_handlers_generic_handler("google.pubsub.v1.Subscriber", subscriber),
        ]

    def _guard(self, fn: Handler) -> Handler:
        """Turn broker errors into their gRPC status; never let an unexpected one escape as a crash."""

        async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                if request is MALFORMED:
                    raise invalid(_MALFORMED_MESSAGE)
                return await fn(request, context)
            except PubSubError as error:
                await context.abort(error.code, error.message)
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception:
                _LOG.exception("unexpected error in a unary call")
                await context.abort(grpc.StatusCode.INTERNAL, "Internal error in the emulator; see its log.")

        return behavior

    @staticmethod
    def _sync(fn: Callable[[Any], Any]) -> Handler:
        async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            result = fn(request)
            return _Empty() if result is None else result

        return behavior

    # ------------------------------------------------------------------------------------------ publisher

    async def _create_topic(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return self.broker.create_topic(request)

    async def _list_topics(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        topics, token = self.broker.list_topics(request.project, request.page_size, request.page_token)
        response = _pb("ListTopicsResponse")(next_page_token=token)
        response.topics.extend(topics)
        return response

    async def _list_topic_subscriptions(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        names, token = self.broker.list_topic_subscriptions(request.topic, request.page_size, request.page_token)
        return _pb("ListTopicSubscriptionsResponse")(subscriptions=names, next_page_token=token)

    async def _list_topic_snapshots(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        # Snapshots are not emulated; an existing topic simply has none.
        self.broker.get_topic(request.topic)
        return _pb("ListTopicSnapshotsResponse")()

    async def _detach_subscription(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        self.broker.detach_subscription(request.subscription)
        return _pb("DetachSubscriptionResponse")()

    async def _publish(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        ids = self.broker.publish(request.topic, request.messages)
        return _pb("PublishResponse")(message_ids=ids)

    # ----------------------------------------------------------------------------------------- subscriber

    async def _create_subscription(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return self.broker.create_subscription(request)

    async def _list_subscriptions(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        subs, token = self.broker.list_subscriptions(request.project, request.page_size, request.page_token)
        response = _pb("ListSubscriptionsResponse")(next_page_token=token)
        response.subscriptions.extend(subs)
        return response

    async def _settle(
        self, context: grpc.aio.ServicerContext[Any, Any], sub: SubscriptionState, failures: Mapping[str, str]
    ) -> Any:
        # Without exactly-once the service accepts stale ack ids silently; with it, it reports each one.
        if failures and sub.exactly_once:
            code = grpc.StatusCode.INVALID_ARGUMENT
            await context.abort(code, _INVALID_ACK_IDS, _exactly_once_trailer(code, _INVALID_ACK_IDS, failures))
        return _Empty()

    async def _refuse_mixed_batch(
        self, context: grpc.aio.ServicerContext[Any, Any], sub: SubscriptionState, ack_ids: Sequence[str]
    ) -> None:
        """Under exactly-once, refuse a batch holding a stale ack id before applying any of it.

        The client fails every ack id of an errored call that the trailer does not name, so a valid ack id
        batched with a stale one would be reported as failed although it was applied. Naming the valid ones
        TRANSIENT_… instead (and applying nothing) makes the client retry them alone, and they succeed.
        """
        if not sub.exactly_once:
            return
        failures = {a: PERMANENT_INVALID_ACK_ID for a in ack_ids if a not in sub.leases}
        if failures:
            failures.update({a: RETRY_ALONE for a in ack_ids if a not in failures})
            await self._settle(context, sub, failures)

    async def _acknowledge(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        sub = self.broker.subscription(request.subscription)
        if not request.ack_ids:
            raise invalid("No ack ids specified.")
        await self._refuse_mixed_batch(context, sub, request.ack_ids)
        failures = self.broker.acknowledge(sub, request.ack_ids)
        return await self._settle(context, sub, failures)

    async def _modify_ack_deadline(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        sub = self.broker.subscription(request.subscription)
        if not request.ack_ids:
            raise invalid("No ack ids specified.")
        if not 0 <= request.ack_deadline_seconds <= 600:
            raise invalid(
                f"Invalid ack deadline given: {request.ack_deadline_seconds}. It must be between 0 and 600 seconds."
            )
        await self._refuse_mixed_batch(context, sub, request.ack_ids)
        failures = self.broker.modify_ack_deadline(sub, request.ack_ids, request.ack_deadline_seconds)
        return await self._settle(context, sub, failures)

    async def _pull(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        sub = self.broker.pullable(request.subscription)
        if request.max_messages <= 0:
            raise invalid("max_messages must be greater than 0.")
        entries = self.broker.take(sub, None, request.max_messages, sub.config.ack_deadline_seconds)
        if not entries and not request.return_immediately:
            remaining = context.time_remaining()
            give_up = time.monotonic() + min(PULL_WAIT_S, max(0.0, (remaining or PULL_WAIT_S) - 0.5))
            waiter = asyncio.Event()
            sub.pull_waiters.add(waiter)
            try:
                while not entries and not self.shutting_down and not sub.deleted:
                    left = give_up - time.monotonic()
                    if left <= 0:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(waiter.wait(), left)
                    waiter.clear()
                    entries = self.broker.take(sub, None, request.max_messages, sub.config.ack_deadline_seconds)
            finally:
                sub.pull_waiters.discard(waiter)
            if not entries and self.shutting_down:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "The emulator is shutting down.")
        response = _pb("PullResponse")()
        _fill(response.received_messages, entries, sub.has_dead_letter)
        return response

    # ------------------------------------------------------------------------------------ streaming pull

    async def _streaming_pull(self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]) -> None:
        try:
            first = await anext(requests)
        except StopAsyncIteration:
            return
        try:
            if first is MALFORMED:
                raise invalid(_MALFORMED_MESSAGE)
            sub = self.broker.pullable(first.subscription)
            if not 10 <= first.stream_ack_deadline_seconds <= 600:
                raise invalid(
                    f"Invalid stream_ack_deadline_seconds ({first.stream_ack_deadline_seconds}): "
                    "it must be between 10 and 600 seconds."
                )
            if first.max_outstanding_messages < 0 or first.max_outstanding_bytes < 0:
                raise invalid("max_outstanding_messages and max_outstanding_bytes must not be negative.")
            if self.shutting_down:
                raise PubSubError(grpc.StatusCode.UNAVAILABLE, "The emulator is shutting down.")
        except PubSubError as error:
            await context.abort(error.code, error.message)
        stream = Stream(
            sub,
            first.client_id,
            first.max_outstanding_messages,
            first.max_outstanding_bytes,
            first.stream_ack_deadline_seconds,
        )
        pending: list[Any] = []
        self._apply_stream_request(sub, stream, first, pending)
        sub.streams.add(stream)
        reader = asyncio.create_task(self._read_stream(requests, sub, stream, pending))
        _LOG.debug("stream opened on %s (client %s)", sub.name, stream.client_id)
        try:
            stream.wake.set()
            while True:
                await stream.wake.wait()
                stream.wake.clear()
                if stream.closing is not None:
                    code, message = stream.closing
                    await context.abort(code, message)
                if reader.done():
                    # The client half-closed or went away; nothing more will be read or wanted.
                    return
                while pending:
                    await context.write(pending.pop(0))
                entries = self.broker.take(sub, stream, 1_000_000, stream.ack_deadline)
                if not entries:
                    continue
                response = _pb("StreamingPullResponse")()
                _fill(response.received_messages, entries, sub.has_dead_letter)
                # The client switches its exactly-once mode from these flags on every response.
                response.subscription_properties.exactly_once_delivery_enabled = sub.exactly_once
                response.subscription_properties.message_ordering_enabled = sub.ordered
                await context.write(response)
                stream.wake.set()  # there may be more than one response's worth waiting
        finally:
            reader.cancel()
            sub.streams.discard(stream)
            # Leases outlive the stream: they end at their deadline unless acked through another call.
            _LOG.debug("stream closed on %s (client %s)", sub.name, stream.client_id)

    async def _read_stream(
        self, requests: AsyncIterator[Any], sub: SubscriptionState, stream: Stream, pending: list[Any]
    ) -> None:
        try:
            async for request in requests:
                self._apply_stream_request(sub, stream, request, pending)
        except asyncio.CancelledError:
            raise
        except Exception:  # the client vanished: the main loop notices through `reader.done()`
            _LOG.debug("stream reader ended", exc_info=True)
        finally:
            stream.wake.set()

    def _apply_stream_request(self, sub: SubscriptionState, stream: Stream, request: Any, pending: list[Any]) -> None:
        """Acks and modacks sent on the stream (Java, Go and older Python clients do this)."""
        if request is MALFORMED:
            stream.close(grpc.StatusCode.INVALID_ARGUMENT, _MALFORMED_MESSAGE)
            return
        if len(request.modify_deadline_seconds) != len(request.modify_deadline_ack_ids):
            stream.close(
                grpc.StatusCode.INVALID_ARGUMENT,
                "modify_deadline_seconds and modify_deadline_ack_ids must have the same length.",
            )
            return
        try:
            acked = list(request.ack_ids)
            ack_failures = self.broker.acknowledge(sub, acked) if acked else {}
            by_deadline: dict[int, list[str]] = {}
            for seconds, ack_id in zip(request.modify_deadline_seconds, request.modify_deadline_ack_ids, strict=True):
                by_deadline.setdefault(seconds, []).append(ack_id)
            mod_failures: dict[str, str] = {}
            for seconds, ack_ids in by_deadline.items():
                mod_failures.update(self.broker.modify_ack_deadline(sub, ack_ids, seconds))
        except PubSubError as error:
            stream.close(error.code, error.message)
            return
        if sub.exactly_once and (acked or by_deadline):
            response = _pb("StreamingPullResponse")()
            response.subscription_properties.exactly_once_delivery_enabled = True
            response.subscription_properties.message_ordering_enabled = sub.ordered
            if acked:
                confirmation = response.acknowledge_confirmation
                confirmation.ack_ids.extend(a for a in acked if a not in ack_failures)
                confirmation.invalid_ack_ids.extend(ack_failures)
            if by_deadline:
                mod_confirmation = response.modify_ack_deadline_confirmation
                mod_confirmation.ack_ids.extend(a for ids in by_deadline.values() for a in ids if a not in mod_failures)
                mod_confirmation.invalid_ack_ids.extend(mod_failures)
            pending.append(response)
            stream.wake.set()
