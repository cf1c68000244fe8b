"""The consumer runner every worker uses: streaming pull (or push) → typed event → handler → ack/nack.

A service gives it routes (subscription → handler). The runner:

- decodes each message into a typed `CloudEvent`; a message that can never be decoded (bad JSON, unknown type,
  unsupported version, unstorable text) is forwarded to the dead-letter topic with the reason and acked — never
  retried;
- refuses, the same way, an event of a type the subscription's producers do not publish (``unexpected_type``):
  what a handler sees on ``status-findings`` is a findings event, never a forged ``job.requested``;
- records a message over ``max_message_bytes`` (``message_too_large``) as a dead letter whose data is cut to
  64 KiB (``captionqc-dead-letter-truncated``, ``-size``), and acks it: no silent loss, no redelivery loop. The
  subscriber's channel receives any size for that (`subscriber_client`);
- continues the publisher's trace (W3C ``traceparent`` in the attributes) in a CONSUMER span;
- bounds concurrency with the subscriber's flow control (a message counts until it is acked or nacked); a route
  may lease more messages than it runs at once (``concurrency``), and with ``fair=True`` the waiting messages are
  served round-robin between tenants, so that one tenant's backlog cannot hold up another's single job (the client
  keeps extending the leases of the waiting messages meanwhile);
- maps the handler's outcome: success → ack; `PermanentError` → ``captionqc.<stage>.failed`` with the reason,
  then ack; `MessageRefused` → dead letter with its reason, then ack; `TransientError` or anything unexpected →
  nack, so the subscription's retry policy backs off and its dead-letter policy ends a message that keeps failing;
- keeps credentials in (``SECRET_ATTRIBUTES``): a dead letter's copy and a raw handler's attributes lack them,
  and no log line or span carries attributes;
- runs CPU-bound work off the event loop (``ctx.run_in_pool`` / ``ctx.run_in_process``);
- on SIGTERM stops taking messages, nacks the ones waiting for a turn, lets in-flight work finish within the
  grace period, and nacks the rest.

A worker's ``__main__`` is three lines::

    def main() -> None:
        settings = OcrSettings()
        asyncio.run(run_worker(settings, setup=worker_setup, failure_stage=Stage.OCR))

where ``worker_setup(settings, publisher)`` is an async context manager yielding a `WorkerSetup` (routes and
readiness checks) and owning the service's resources (engine, models, database) for the worker's lifetime.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import enum
import functools
import logging
import multiprocessing
import signal
import time
import unicodedata
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from fastapi import FastAPI, Request, Response
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from google.cloud.pubsub_v1.subscriber.message import Message
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from captionqc.runtime.errors import MessageRefused, PermanentError, TransientError
from captionqc.runtime.logs import configure_logging, log_context
from captionqc.runtime.pubsub import (
    DEFAULT_MAX_MESSAGE_BYTES,
    EventPublisher,
    is_secret_attribute,
    message_size,
    subscriber_client,
    subscription_path,
)
from captionqc.runtime.settings import ServiceSettings
from captionqc.runtime.stage_events import stage_failed_event
from captionqc.runtime.tracing import configure_tracing, extract_trace_context, shutdown_tracing
from captionqc.schemas import (
    CloudEvent,
    EventDecodeError,
    EventType,
    FailureReason,
    Refusal,
    Stage,
    TopicName,
    from_pubsub,
)
from captionqc.schemas.topology import accepted_types

log = logging.getLogger(__name__)
T = TypeVar("T")

DEAD_LETTER_REASON = "captionqc-dead-letter-reason"
DEAD_LETTER_MESSAGE = "captionqc-dead-letter-message"
DEAD_LETTER_SOURCE = "captionqc-dead-letter-source"
# Set on a dead letter whose data was cut to fit: "true", and the original message's size in bytes.
DEAD_LETTER_TRUNCATED = "captionqc-dead-letter-truncated"
DEAD_LETTER_SIZE = "captionqc-dead-letter-size"
# How much of an oversized message's data its dead letter keeps: enough to see what it was.
DEAD_LETTER_KEPT_BYTES = 64 * 1024
# The context attributes a cut-down dead letter keeps when even its attributes were too large.
_IDENTIFYING_ATTRIBUTES = ("ce-id", "ce-source", "ce-type", "ce-subject", "ce-time", "content-type")


class HandlerContext(Protocol):
    subscription: str
    delivery_attempt: int

    async def publish(self, event: CloudEvent[Any]) -> None: ...

    async def run_in_pool(self, fn: Callable[..., T], *args: Any) -> T: ...

    async def run_in_process(self, fn: Callable[..., T], *args: Any) -> T: ...


Handler = Callable[[CloudEvent[Any], HandlerContext], Awaitable[None]]
# A raw handler gets the message as it arrived, undecoded: for the dead-letter topic, whose messages may be
# exactly the ones that cannot be decoded (forwarding those to the dead-letter topic again would loop forever).
RawHandler = Callable[[bytes, Mapping[str, str], HandlerContext], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    subscription: str
    handler: Handler | RawHandler
    # Flow control per subscription: at most this many messages leased at once.
    max_messages: int = 4
    # At most this many in the handler at once (None: ``max_messages``); the other leased messages wait for a turn.
    concurrency: int | None = None
    # Turns go round-robin between the tenants of the waiting events (False: first come, first served).
    fair: bool = False
    # While a message waits and its handler works, the client keeps extending its lease, for at most this long
    # from its receipt; past it Pub/Sub redelivers the message (and a message still waiting is nacked). A route
    # whose work can last longer than the client's one hour says so.
    max_lease_s: float = 3600.0
    # The longest single extension: it bounds how long a dead worker's message waits before it is redelivered.
    # 0 lets the client choose (its 99th percentile of ack latency, 10..600 s).
    lease_extension_s: int = 0
    # True: ``handler`` is a `RawHandler`; no decoding, no dead-lettering. A `PermanentError` is logged and the
    # message acked (there is nowhere further to send it); anything else is nacked as usual.
    raw: bool = False
    # The event types the handler may see; None: those the subscription's producers publish (`accepted_types`).
    # Any other type is dead-lettered as ``unexpected_type`` before the handler.
    accepts: frozenset[EventType] | None = None


@dataclass
class WorkerSetup:
    routes: list[Route]
    readiness_checks: list[Callable[[], Awaitable[bool]]] = field(default_factory=list)


class Outcome(enum.Enum):
    ACK = "ack"
    NACK = "nack"


@dataclass
class _Context:
    subscription: str
    delivery_attempt: int
    _runner: ConsumerRunner

    async def publish(self, event: CloudEvent[Any]) -> None:
        await self._runner.publisher.publish(event)

    async def run_in_pool(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        # copy the contextvars (trace span, log context) into the worker thread
        import contextvars

        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self._runner.thread_pool, functools.partial(ctx.run, fn, *args))

    async def run_in_process(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._runner.process_pool(), functools.partial(fn, *args))


class ConsumerRunner:
    def __init__(
        self,
        *,
        project: str,
        source: str,
        routes: Sequence[Route],
        publisher: EventPublisher,
        failure_stage: Stage | None,
        grace_s: float = 20.0,
        threads: int = 2,
        processes: int = 0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.project = project
        self.max_message_bytes = max_message_bytes
        self.source = source
        self.routes = {r.subscription: r for r in routes}
        self._accepts = {r.subscription: _accepted(r) for r in routes if not r.raw}
        self._lanes = {r.subscription: _Lane(_concurrency(r), fair=r.fair) for r in routes}
        self.publisher = publisher
        self.failure_stage = failure_stage
        self.grace_s = grace_s
        self.thread_pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cpu")
        self._processes = processes
        self._process_pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._subscriber: pubsub_v1.SubscriberClient | None = None
        self._futures: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._tracer = trace.get_tracer("captionqc.runtime.consumer")

    # -- lifecycle -------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self._futures) and not self._stopping and all(not f.done() for f in self._futures)

    def process_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._process_pool is None:
            # spawn, not fork: forking a process that holds gRPC threads can deadlock the child.
            self._process_pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=max(1, self._processes), mp_context=multiprocessing.get_context("spawn")
            )
        return self._process_pool

    async def __aenter__(self) -> ConsumerRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open one streaming pull per route."""
        self._loop = asyncio.get_running_loop()
        self._subscriber = subscriber_client()
        for route in self.routes.values():
            path = subscription_path(self.project, route.subscription)
            future = self._subscriber.subscribe(
                path,
                callback=functools.partial(self._on_message, route),
                flow_control=pubsub_v1.types.FlowControl(
                    max_messages=route.max_messages,
                    max_lease_duration=route.max_lease_s,
                    max_duration_per_lease_extension=route.lease_extension_s,
                ),
                await_callbacks_on_shutdown=True,
            )
            self._futures.append(future)
            log.info("subscribed", extra={"subscription": route.subscription})

    async def stop(self) -> None:
        """Stop taking messages, let in-flight handlers finish within the grace period, nack what is left."""
        if self._stopping:
            return
        self._stopping = True
        for lane in self._lanes.values():
            lane.close()  # messages waiting for a turn are nacked now, not after the grace period
        if self._tasks:
            log.info("draining in-flight messages", extra={"count": len(self._tasks)})
            _done, pending = await asyncio.wait(set(self._tasks), timeout=self.grace_s)
            for task in pending:
                task.cancel()  # the task nacks its message on cancellation
            if pending:
                await asyncio.wait(pending, timeout=5)
        # Give the client a moment to send the acks and nacks queued above before the stream closes.
        await asyncio.sleep(0.2)
        for future in self._futures:
            future.cancel()
        for future in self._futures:
            await asyncio.to_thread(_wait_stream_closed, future)
        if self._subscriber is not None:
            self._subscriber.close()
        self.thread_pool.shutdown(wait=False, cancel_futures=True)
        if self._process_pool is not None:
            self._process_pool.shutdown(wait=False, cancel_futures=True)

    # -- streaming pull ----------------------------------------------------------------------------------------
    def _on_message(self, route: Route, message: Message) -> None:
        """Runs on the client's callback thread: hand the message to the event loop and return at once."""
        loop = self._loop
        if loop is None or self._stopping:
            message.nack()
            return
        loop.call_soon_threadsafe(self._spawn, route, message)

    def _spawn(self, route: Route, message: Message) -> None:
        if self._stopping:
            message.nack()
            return
        task = asyncio.create_task(self._process_streamed(route, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process_streamed(self, route: Route, message: Message) -> None:
        outcome = Outcome.NACK
        try:
            outcome = await self.process(
                route,
                message.data,
                dict(message.attributes),
                message.delivery_attempt or 1,
                message.message_id,
            )
        finally:
            # On cancellation (shutdown past the grace period) the default NACK stands.
            if outcome is Outcome.ACK:
                message.ack()
            else:
                message.nack()

    # -- the shared path (streaming and push) ------------------------------------------------------------------
    async def process(
        self, route: Route, data: bytes, attributes: Mapping[str, str], delivery_attempt: int, message_id: str
    ) -> Outcome:
        parent = extract_trace_context(attributes)
        with self._tracer.start_as_current_span(
            f"{route.subscription} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "gcp_pubsub",
                "messaging.destination.subscription.name": route.subscription,
                "messaging.message.id": message_id,
                "messaging.gcp_pubsub.message.delivery_attempt": delivery_attempt,
            },
        ) as span:
            size = message_size(data, attributes)
            if size > self.max_message_bytes:
                span.set_status(Status(StatusCode.ERROR, Refusal.MESSAGE_TOO_LARGE.value))
                log.warning(
                    "oversized message dead-lettered, truncated",
                    extra={"subscription": route.subscription, "reason": Refusal.MESSAGE_TOO_LARGE.value},
                )
                message = f"{size} bytes, over the {self.max_message_bytes}-byte message limit"
                return await self._dead_letter(route, data, attributes, Refusal.MESSAGE_TOO_LARGE, message)
            if route.raw:
                if not await self._wait_turn(route, ""):
                    return Outcome.NACK
                try:
                    return await self._process_raw(route, data, attributes, delivery_attempt)
                finally:
                    self._lanes[route.subscription].release()
            try:
                event = from_pubsub(data, attributes)
            except EventDecodeError as exc:
                span.set_status(Status(StatusCode.ERROR, exc.reason))
                with log_context(event_id=attributes.get("ce-id"), job_id=exc.subject):
                    log.warning(
                        "undecodable message dead-lettered: %s",
                        exc.message,
                        extra={"subscription": route.subscription, "reason": exc.reason},
                    )
                    return await self._dead_letter(route, data, attributes, exc.reason, exc.message)
            span.set_attribute("captionqc.job_id", event.subject)
            span.set_attribute("cloudevents.event_id", event.id)
            span.set_attribute("cloudevents.event_type", event.type.value)
            with log_context(job_id=event.subject, event_id=event.id, subscription=route.subscription):
                if event.type not in self._accepts[route.subscription]:
                    span.set_status(Status(StatusCode.ERROR, Refusal.UNEXPECTED_TYPE.value))
                    log.warning(
                        "event of an unexpected type dead-lettered",
                        extra={"event_type": event.type.value, "reason": Refusal.UNEXPECTED_TYPE.value},
                    )
                    message = f"{event.type.value} is not published on the topic of {route.subscription}"
                    return await self._dead_letter(route, data, attributes, Refusal.UNEXPECTED_TYPE, message)
                if not await self._wait_turn(route, event.tenant):
                    return Outcome.NACK
                try:
                    return await self._handle(route, event, data, attributes, delivery_attempt)
                finally:
                    self._lanes[route.subscription].release()

    async def _wait_turn(self, route: Route, tenant: str) -> bool:
        """Wait for a handler slot of ``route``; False when the message must be nacked instead: the runner is
        stopping, or the message waited so long that the client stopped extending its lease (Pub/Sub redelivers
        it, so running it now would only duplicate the work)."""
        lane = self._lanes[route.subscription]
        started = time.monotonic()
        try:
            await lane.acquire(tenant)
        except _Draining:
            log.info("stopping before the message's turn; nacked for redelivery")
            return False
        waited = time.monotonic() - started
        if waited >= route.max_lease_s:
            lane.release()
            log.warning("the message's lease lapsed while it waited for a turn; nacked")
            return False
        if waited > 0.001:
            trace.get_current_span().add_event("turn", {"captionqc.waited_s": round(waited, 3)})
        return True

    async def _handle(
        self, route: Route, event: CloudEvent[Any], data: bytes, attributes: Mapping[str, str], delivery_attempt: int
    ) -> Outcome:
        span = trace.get_current_span()
        ctx = _Context(route.subscription, delivery_attempt, self)
        try:
            await cast(Handler, route.handler)(event, ctx)
        except MessageRefused as exc:
            span.set_status(Status(StatusCode.ERROR, exc.reason.value))
            log.warning("message refused: %s", exc.message, extra={"reason": exc.reason.value})
            return await self._dead_letter(route, data, attributes, exc.reason, exc.message)
        except PermanentError as exc:
            span.set_status(Status(StatusCode.ERROR, exc.reason.value))
            log.warning("permanent failure: %s", exc.message, extra={"reason": exc.reason.value})
            return await self._fail(route, event, exc.reason, exc.message, data, attributes)
        except TransientError as exc:
            span.set_status(Status(StatusCode.ERROR, "transient"))
            log.warning("transient failure, will retry: %s", exc, extra={"delivery_attempt": delivery_attempt})
            return Outcome.NACK
        except asyncio.CancelledError:
            log.warning("handler cancelled at shutdown; message nacked for redelivery")
            raise
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            log.exception("handler failed; message nacked", extra={"delivery_attempt": delivery_attempt})
            return Outcome.NACK
        log.info("processed", extra={"event_type": event.type.value, "outcome": "ack"})
        return Outcome.ACK

    async def _process_raw(
        self, route: Route, data: bytes, attributes: Mapping[str, str], delivery_attempt: int
    ) -> Outcome:
        span = trace.get_current_span()
        # A message Pub/Sub itself dead-lettered still carries whatever its publisher attached, tokens included.
        attributes = _forwardable(attributes)
        with log_context(job_id=attributes.get("ce-subject"), event_id=attributes.get("ce-id")):
            ctx = _Context(route.subscription, delivery_attempt, self)
            try:
                await cast(RawHandler, route.handler)(data, attributes, ctx)
            except (PermanentError, MessageRefused) as exc:
                span.set_status(Status(StatusCode.ERROR, exc.reason.value))
                log.error("raw message dropped: %s", exc.message, extra={"reason": exc.reason.value})
                return Outcome.ACK
            except TransientError as exc:
                span.set_status(Status(StatusCode.ERROR, "transient"))
                log.warning("transient failure, will retry: %s", exc, extra={"delivery_attempt": delivery_attempt})
                return Outcome.NACK
            except asyncio.CancelledError:
                log.warning("handler cancelled at shutdown; message nacked for redelivery")
                raise
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                log.exception("handler failed; message nacked", extra={"delivery_attempt": delivery_attempt})
                return Outcome.NACK
            log.info("processed", extra={"subscription": route.subscription, "outcome": "ack"})
            return Outcome.ACK

    async def _fail(
        self,
        route: Route,
        event: CloudEvent[Any],
        reason: FailureReason,
        message: str,
        data: bytes,
        attributes: Mapping[str, str],
    ) -> Outcome:
        if self.failure_stage is None:
            return await self._dead_letter(route, data, attributes, reason.value, message)
        failed = stage_failed_event(
            event.data.job_id, event.data.tenant, self.failure_stage, reason, message, source=self.source
        )
        try:
            await self.publisher.publish(failed)
        except Exception:
            log.exception("could not publish the failure event; message nacked")
            return Outcome.NACK
        return Outcome.ACK

    async def _dead_letter(
        self, route: Route, data: bytes, attributes: Mapping[str, str], reason: str, message: str
    ) -> Outcome:
        bookkeeping = {
            DEAD_LETTER_REASON: str(reason),
            DEAD_LETTER_MESSAGE: message[:1024],
            DEAD_LETTER_SOURCE: subscription_path(self.project, route.subscription),
        }
        forwarded = {**_forwardable(attributes), **bookkeeping}
        if message_size(data, forwarded) > self.max_message_bytes:
            # Cut to what the dead-letter reader can receive and store: the start of the data, and the original
            # size, so that the record says what was lost.
            bookkeeping |= {DEAD_LETTER_TRUNCATED: "true", DEAD_LETTER_SIZE: str(message_size(data, attributes))}
            data = data[:DEAD_LETTER_KEPT_BYTES]
            forwarded = {**_forwardable(attributes), **bookkeeping}
            if message_size(data, forwarded) > self.max_message_bytes:
                kept = {k: v[:1024] for k, v in _forwardable(attributes).items() if k in _IDENTIFYING_ATTRIBUTES}
                forwarded = {**kept, **bookkeeping}
        try:
            await self.publisher.publish_raw(TopicName.DEAD_LETTER, data, forwarded)
        except Exception:
            log.exception("could not forward to the dead-letter topic; message nacked")
            return Outcome.NACK
        return Outcome.ACK

    # -- push --------------------------------------------------------------------------------------------------
    def push_app(self, *, verify_token: Callable[[str | None], None] | None = None) -> FastAPI:
        """Routes for Pub/Sub push subscriptions: ``POST /pubsub/push/{subscription}``.

        2xx acks; any other status makes Pub/Sub retry with the subscription's backoff. ``verify_token`` checks
        the push OIDC token (see `verify_push_oidc_token`) and raises to refuse.
        """
        app = FastAPI(title=f"{self.source} push endpoint", docs_url=None, redoc_url=None)

        @app.post("/pubsub/push/{subscription}", status_code=204, include_in_schema=False)
        async def push(subscription: str, request: Request) -> Response:
            if verify_token is not None:
                try:
                    verify_token(request.headers.get("authorization"))
                except Exception:
                    return Response(status_code=401)
            route = self.routes.get(subscription)
            if route is None:
                return Response(status_code=404)
            try:
                body = await request.json()
                msg = body["message"]
                data = base64.b64decode(msg.get("data", ""))
                attributes = dict(msg.get("attributes") or {})
                attempt = int(body.get("deliveryAttempt") or 1)
                message_id = str(msg.get("messageId", ""))
            except Exception:
                # A push body we cannot parse is Pub/Sub's bug or an impostor: ack it away (retrying cannot help).
                return Response(status_code=204)
            outcome = await self.process(route, data, attributes, attempt, message_id)
            return Response(status_code=204 if outcome is Outcome.ACK else 503)

        return app


class _Draining(Exception):
    """The runner is stopping: a message still waiting for its turn is nacked."""


class _Lane:
    """The handler slots of one route: at most ``concurrency`` handlers at once, the other leased messages waiting.

    Waiting messages queue per tenant (one queue when not ``fair``); a freed slot goes to the tenant at the head
    of the rotation, which then moves to its back. A tenant with ten queued jobs therefore gets every other turn
    while another tenant has one waiting, instead of all ten turns first. Runs on the event loop only.
    """

    def __init__(self, concurrency: int, *, fair: bool) -> None:
        self._free = concurrency
        self._fair = fair
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._rotation: deque[str] = deque()  # tenants with waiting messages, next turn first
        self._closed = False

    async def acquire(self, tenant: str) -> None:
        if self._closed:
            raise _Draining
        if self._free > 0:  # a free slot means nobody is waiting: release() hands slots to waiters first
            self._free -= 1
            return
        key = tenant if self._fair else ""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiting.get(key)
        if queue is None:
            queue = self._waiting[key] = deque()
            self._rotation.append(key)
        queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # the turn came just as the task was cancelled: pass it on
            else:
                self._forget(key, turn)
            raise

    def release(self) -> None:
        while self._rotation:
            key = self._rotation.popleft()
            queue = self._waiting[key]
            turn = queue.popleft()
            if queue:
                self._rotation.append(key)
            else:
                del self._waiting[key]
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1

    def close(self) -> None:
        self._closed = True
        for queue in self._waiting.values():
            for turn in queue:
                if not turn.done():
                    turn.set_exception(_Draining())
        self._waiting.clear()
        self._rotation.clear()

    def _forget(self, key: str, turn: asyncio.Future[None]) -> None:
        queue = self._waiting.get(key)
        if queue is None or turn not in queue:
            return
        queue.remove(turn)
        if not queue:
            del self._waiting[key]
            self._rotation.remove(key)


def _concurrency(route: Route) -> int:
    concurrency = route.max_messages if route.concurrency is None else route.concurrency
    if not 1 <= concurrency <= route.max_messages:
        raise ValueError(f"{route.subscription}: concurrency must be 1..max_messages ({route.max_messages})")
    return concurrency


def _accepted(route: Route) -> frozenset[EventType]:
    if route.accepts is not None:
        return route.accepts
    try:
        return accepted_types(route.subscription)
    except KeyError:
        raise ValueError(
            f"subscription {route.subscription!r} is not in the topology: give its Route the event types it accepts"
        ) from None


def _forwardable(attributes: Mapping[str, str]) -> dict[str, str]:
    """The attributes a copy of a message may carry on: no credential, and nothing the dead-letter record could
    not store (a key or value with a control character: the reason attached with it names which)."""
    return {
        k: v
        for k, v in attributes.items()
        if not is_secret_attribute(k) and not _has_control(k) and not _has_control(v)
    }


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in text)


def verify_push_oidc_token(audience: str, service_account_email: str | None) -> Callable[[str | None], None]:
    """A verifier for the push subscription's OIDC token (google-auth); raises on anything unexpected."""
    from google.auth.transport import requests as google_requests
    from google.oauth2 import id_token

    request = google_requests.Request()

    def verify(authorization: str | None) -> None:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise PermissionError("missing bearer token")
        claims = id_token.verify_oauth2_token(  # type: ignore[no-untyped-call]
            authorization.split(" ", 1)[1], request, audience=audience
        )
        if service_account_email and claims.get("email") != service_account_email:
            raise PermissionError("token is not from the push service account")
        if not claims.get("email_verified", False):
            raise PermissionError("push token email is not verified")

    return verify


def _wait_stream_closed(future: Any, timeout: float = 10.0) -> None:
    """Block (in a thread) until a cancelled streaming pull has shut down; its result is the cancellation."""
    with suppress(BaseException):
        future.result(timeout=timeout)


def health_app(runner: ConsumerRunner, checks: Sequence[Callable[[], Awaitable[bool]]], service: str) -> FastAPI:
    """``/healthz`` (the process is alive) and ``/readyz`` (pulling, and every dependency answers)."""
    app = FastAPI(title=f"captionqc {service} worker", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, Any]:
        results = {"subscriber": runner.running}
        for check in checks:
            results[getattr(check, "__name__", "check")] = await check()
        ready = all(results.values())
        response.status_code = 200 if ready else 503
        return {"status": "ready" if ready else "not_ready", "checks": results}

    return app


async def run_worker(
    settings: ServiceSettings,
    *,
    setup: Callable[[Any, EventPublisher], AbstractAsyncContextManager[WorkerSetup]],
    failure_stage: Stage | None,
    threads: int = 2,
    processes: int = 0,
    port: int | None = None,
) -> None:
    """Run a worker until SIGTERM/SIGINT: logging, tracing, publisher, the service's resources, health server."""
    import os

    import uvicorn

    configure_logging(settings.service_name, settings.gcp_project, settings.log_level)
    configure_tracing(settings)
    publisher = EventPublisher(settings.gcp_project, max_message_bytes=settings.max_message_bytes)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with setup(settings, publisher) as worker:
            runner = ConsumerRunner(
                project=settings.gcp_project,
                source=f"//captionqc/{settings.service_name}",
                routes=worker.routes,
                publisher=publisher,
                failure_stage=failure_stage,
                grace_s=settings.shutdown_grace_s,
                threads=threads,
                processes=processes,
                max_message_bytes=settings.max_message_bytes,
            )
            http_port = port if port is not None else int(os.environ.get("PORT", settings.health_port))
            server = uvicorn.Server(
                uvicorn.Config(
                    health_app(runner, worker.readiness_checks, settings.service_name),
                    host=settings.health_host,
                    port=http_port,
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                )
            )
            server_task = asyncio.create_task(server.serve())
            await runner.start()
            log.info("worker started", extra={"count": len(worker.routes)})
            await stop.wait()
            log.info("shutdown requested: draining")
            await runner.stop()
            server.should_exit = True
            await server_task
    finally:
        publisher.close()
        shutdown_tracing()
        log.info("worker stopped")
