"""JSON-lines logging with Cloud Logging's field names, correlated with traces, jobs and requests.

Fields: ``severity``, ``message``, ``time``, ``logging.googleapis.com/trace`` (``projects/<p>/traces/<id>``),
``logging.googleapis.com/spanId``, ``logging.googleapis.com/trace_sampled``, plus ``service``, ``job_id``,
``event_id``, ``request_id``. Bodies, tokens and media text are never logged: callers pass ids, not payloads.

Query strings are cut from every line and stack trace as it is formatted (``/v1/jobs?REDACTED``), whoever wrote it:
a token sent as ``?access_token=…`` must not reach the logs through the server's access log or an HTTP client's
error message. The servers' own loggers (uvicorn, gunicorn) are routed through the same formatter.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("captionqc_log_context", default={})  # noqa: B039

# Extra attributes a caller may attach with ``logger.info(..., extra={...})`` that are safe to emit.
_SAFE_EXTRA = (
    "job_id", "event_id", "event_type", "request_id", "tenant", "subscription", "delivery_attempt", "stage",
    "reason", "method", "route", "status", "duration_ms", "topic", "message_id", "count", "attempt", "outcome",
)  # fmt: skip


# A path or URL followed by a query: "/v1/jobs?access_token=…", "https://h/x?sig=…" (up to a space or a quote).
_QUERY = re.compile(
    r"(?P<path>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#\"'<>]*(?:/[^\s?#\"'<>]*)?|/[^\s?#\"'<>]*)\?[^\s\"'<>]*"
)
# Servers that log requests on their own loggers, each with its own handler by default.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn", "gunicorn.error", "gunicorn.access")


def redact_query_strings(text: str) -> str:
    """Replace the query of every path or URL in ``text`` with ``REDACTED`` (parameter names can be secrets)."""
    return _QUERY.sub(lambda m: f"{m.group('path')}?REDACTED", text)


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Attach fields (job id, event id, request id…) to every log line written inside the block."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class CloudLoggingFormatter(logging.Formatter):
    def __init__(self, service: str, project: str) -> None:
        super().__init__()
        self.service = service
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _severity(record.levelno),
            "message": redact_query_strings(record.getMessage()),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "logger": record.name,
            "service": self.service,
        }
        entry.update(_context.get())
        for key in _SAFE_EXTRA:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["logging.googleapis.com/trace"] = f"projects/{self.project}/traces/{span.trace_id:032x}"
            entry["logging.googleapis.com/spanId"] = f"{span.span_id:016x}"
            entry["logging.googleapis.com/trace_sampled"] = span.trace_flags.sampled
        if record.exc_info:
            # Cloud Error Reporting picks up stack traces from the message; keep them out of 5xx bodies, in here.
            entry["stack_trace"] = redact_query_strings("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(entry, default=str)


def _severity(level: int) -> str:
    if level >= logging.CRITICAL:
        return "CRITICAL"
    if level >= logging.ERROR:
        return "ERROR"
    if level >= logging.WARNING:
        return "WARNING"
    if level >= logging.INFO:
        return "INFO"
    return "DEBUG"


def configure_logging(service: str, project: str, level: str = "INFO") -> None:
    """Route every logger to one JSON handler on stdout (idempotent)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter(service, project))
    root.handlers = [handler]
    root.setLevel(level.upper())
    # uvicorn and gunicorn give their loggers handlers of their own, whose lines would skip the JSON shape and the
    # query redaction: they go through the root handler instead.
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers = []
        server_logger.propagate = True
    # Chatty libraries: their INFO lines carry nothing an SRE needs, and some would log URLs with tokens.
    for name in (
        "httpx",
        "httpcore",
        "google.api_core",
        "google.auth",
        "urllib3",
        "grpc",
        "uvicorn.access",
        "asyncio",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
