"""Pure-ASGI middleware: request ids, the server span, the access log, a catch-all 500, and a body-size limit.

Pure ASGI (not ``BaseHTTPMiddleware``) so that the endpoint runs in the same task and context as the span and the
request id: the outbox row written by a handler captures the request's trace context through contextvars.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from captionqc.runtime.http.context import current_request_id, reset_request_id, set_request_id
from captionqc.runtime.http.errors import internal_error_response
from captionqc.runtime.logs import log_context
from captionqc.runtime.tracing import extract_trace_context
from captionqc.schemas.api import error_body

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID_LENGTH = 128
_REQUEST_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")

access_log = logging.getLogger("captionqc.access")
log = logging.getLogger("captionqc.http")


def sanitize_request_id(raw: str | None) -> str | None:
    """Keep a caller's id if it is usable in logs and headers: safe characters only, bounded length."""
    if not raw:
        return None
    cleaned = _REQUEST_ID_UNSAFE.sub("", raw)[:MAX_REQUEST_ID_LENGTH]
    return cleaned or None


class RequestContextMiddleware:
    """Per HTTP request: an ``X-Request-ID`` (kept if sent, else made; echoed back), a SERVER span continuing an
    incoming ``traceparent``, one JSON access-log line, and a generic 500 for anything that escapes the app.

    The access line has method, route template (never the raw path: ids and query strings stay out), status,
    duration and request id; the trace id comes from the span through the log formatter.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._tracer = trace.get_tracer("captionqc.runtime.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = sanitize_request_id(headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
        # A copy: the server may share the lifespan state dict between requests.
        scope["state"] = {**scope.get("state", {}), "request_id": request_id}
        method: str = scope["method"]
        status = 500
        started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                raw = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                raw.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": raw}
            await send(message)

        start = time.perf_counter()
        token = set_request_id(request_id)
        try:
            with log_context(request_id=request_id), self._server_span(method, headers) as (span, own_span):
                # Set now: an outer span may already be ended when the response's last byte has gone.
                span.set_attribute("captionqc.request_id", request_id)
                try:
                    await self.app(scope, receive, send_with_request_id)
                except Exception as exc:
                    log.error("unhandled error", exc_info=exc)
                    span.record_exception(exc)
                    if started:
                        raise
                    await internal_error_response()(scope, receive, send_with_request_id)
                finally:
                    route = _route_template(scope)
                    duration_ms = round((time.perf_counter() - start) * 1000, 2)
                    if own_span:
                        span.update_name(f"{method} {route}")
                        span.set_attribute("http.request.method", method)
                        span.set_attribute("http.route", route)
                        span.set_attribute("http.response.status_code", status)
                        if status >= 500:
                            span.set_status(Status(StatusCode.ERROR))
                    access_log.info(
                        "%s %s %s",
                        method,
                        route,
                        status,
                        extra={"method": method, "route": route, "status": status, "duration_ms": duration_ms},
                    )
        finally:
            reset_request_id(token)

    @contextmanager
    def _server_span(self, method: str, headers: Headers) -> Iterator[tuple[Span, bool]]:
        """The request's SERVER span: the one an outer layer already started (FastAPI's native telemetry, or
        contrib's ASGI instrumentation) if there is one, else ours, continuing an incoming ``traceparent``."""
        current = trace.get_current_span()
        if current.is_recording() and current.get_span_context().is_valid:
            yield current, False
            return
        parent = extract_trace_context({k: v for k, v in headers.items() if k in {"traceparent", "tracestate"}})
        with self._tracer.start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, record_exception=False, set_status_on_exception=False
        ) as span:
            yield span, True


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    # Unmatched paths are not logged verbatim: they are caller-controlled and unbounded in number.
    return path if isinstance(path, str) else "(unmatched)"


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_body_bytes`` with 413 in the error shape.

    A declared ``Content-Length`` over the limit is refused before anything is read; a chunked or lying body is
    counted as it streams in, and the 413 is sent the moment the limit is crossed (the app then sees a
    disconnect, and whatever it tries to send afterwards is dropped).
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_body_bytes
            except ValueError:
                too_large = False  # the server rejects a malformed Content-Length itself
            if too_large:
                await self._refuse(send)
                return

        received = 0
        responded = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, responded
            if responded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    if response_started:
                        raise _BodyTooLarge
                    responded = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if responded:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not responded:
                raise

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            error_body(
                "payload_too_large",
                f"The request body exceeds {self.max_body_bytes} bytes.",
                request_id=current_request_id(),
            )
        ).encode()
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def install_middleware(app: Any, *, max_body_bytes: int) -> None:
    """Add both in the right order: request context outermost, so a 413 still gets its id, span and log line."""
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=max_body_bytes)
    app.add_middleware(RequestContextMiddleware)


__all__ = [
    "BodySizeLimitMiddleware",
    "RequestContextMiddleware",
    "install_middleware",
    "sanitize_request_id",
]
