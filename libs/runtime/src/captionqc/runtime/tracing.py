"""OpenTelemetry set-up and trace-context propagation through Pub/Sub message attributes.

The publisher injects W3C ``traceparent``/``tracestate`` into the message attributes; the consumer extracts them
and starts its span as a child, so one trace runs from the gateway's POST to the findings.

Query strings never reach a span: FastAPI's own telemetry (and contrib's ASGI instrumentation) record the request's
``url.query`` verbatim, so a token a caller puts in ``?access_token=…`` would sit in Cloud Trace. `QueryRedactor`
replaces the query of every URL attribute as the span starts, on whichever SDK provider the process uses.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from captionqc.runtime.settings import ServiceSettings, TraceExporter

_PROPAGATOR = TraceContextTextMapPropagator()
_lock = threading.Lock()
_provider: TracerProvider | None = None

REDACTED = "REDACTED"
# Semantic-convention attributes holding a query string, or a URL or request target that may carry one (the
# current names and the ones older instrumentations still write).
_QUERY_ATTRIBUTES = frozenset({"url.query", "http.query"})
_URL_ATTRIBUTES = frozenset({"url.full", "http.url", "http.target", "url.original"})


def redact_url(value: str) -> str:
    """``/v1/jobs?access_token=s3cret#x`` → ``/v1/jobs?REDACTED``: parameter names can be secrets too."""
    head, sep, _query = value.partition("?")
    return f"{head}?{REDACTED}" if sep else value.partition("#")[0]


class QueryRedactor(SpanProcessor):
    """Replaces query strings in a span's URL attributes when it starts (instrumentations set them at start)."""

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        for key, value in list((span.attributes or {}).items()):
            if not isinstance(value, str):
                continue
            if key in _QUERY_ATTRIBUTES and value:
                span.set_attribute(key, REDACTED)
            elif key in _URL_ATTRIBUTES and ("?" in value or "#" in value):
                span.set_attribute(key, redact_url(value))

    def on_end(self, span: ReadableSpan) -> None:
        return None


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file: lets end-to-end tests assert the trace tree
    across processes without a collector."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            if ctx is None:
                continue
            lines.append(
                json.dumps(
                    {
                        "name": span.name,
                        "trace_id": f"{ctx.trace_id:032x}",
                        "span_id": f"{ctx.span_id:016x}",
                        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
                        "service": (span.resource.attributes.get("service.name") if span.resource else None),
                        "kind": span.kind.name,
                        "start_ns": span.start_time,
                        "end_ns": span.end_time,
                        "attributes": {
                            k: v for k, v in (span.attributes or {}).items() if isinstance(v, str | int | float | bool)
                        },
                        "status": span.status.status_code.name,
                    }
                )
            )
        with self._lock, self.path.open("a") as fh:
            fh.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _exporter(settings: ServiceSettings) -> SpanExporter | None:
    match settings.trace_exporter:
        case TraceExporter.NONE:
            return None
        case TraceExporter.CONSOLE:
            return ConsoleSpanExporter()
        case TraceExporter.FILE:
            if settings.trace_file is None:
                raise ValueError("trace_exporter=file needs trace_file")
            settings.trace_file.parent.mkdir(parents=True, exist_ok=True)
            return JsonLinesSpanExporter(settings.trace_file)
        case TraceExporter.OTLP:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(endpoint=settings.otlp_endpoint) if settings.otlp_endpoint else OTLPSpanExporter()
        case TraceExporter.GCP_TRACE:
            from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

            return CloudTraceSpanExporter(project_id=settings.gcp_project)  # type: ignore[no-untyped-call]
    return None  # pragma: no cover - exhaustive match


def configure_tracing(settings: ServiceSettings) -> TracerProvider:
    """Install one tracer provider per process, exporting as the settings say, query strings redacted. Idempotent.

    If an SDK provider is already installed (the test harness's, or an auto-instrumentation agent's), it is the
    one spans go to (OTel takes one per process): the redactor and the exporter are added to it.
    """
    global _provider  # noqa: PLW0603 - the OTel API itself keeps one global provider per process
    with _lock:
        if _provider is not None:
            return _provider
        installed = trace.get_tracer_provider()
        if isinstance(installed, TracerProvider):
            provider = installed
        else:
            provider = TracerProvider(
                resource=Resource.create({"service.name": settings.service_name, "service.namespace": "captionqc"}),
                sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
            )
        provider.add_span_processor(QueryRedactor())
        exporter = _exporter(settings)
        if exporter is not None:
            # The file exporter is for tests: export synchronously so spans are on disk when the test looks.
            simple = settings.trace_exporter in {TraceExporter.FILE, TraceExporter.CONSOLE}
            provider.add_span_processor(SimpleSpanProcessor(exporter) if simple else BatchSpanProcessor(exporter))
        if provider is not installed:
            trace.set_tracer_provider(provider)
        propagate.set_global_textmap(_PROPAGATOR)
        _provider = provider
        return provider


def shutdown_tracing() -> None:
    with _lock:
        if _provider is not None:
            _provider.force_flush()


def inject_trace_context(attributes: MutableMapping[str, str], ctx: context.Context | None = None) -> None:
    """Write the current (or given) trace context into Pub/Sub attributes."""
    _PROPAGATOR.inject(attributes, context=ctx)


def extract_trace_context(attributes: Mapping[str, str]) -> context.Context:
    return _PROPAGATOR.extract(dict(attributes))


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def traceparent_of(attributes: Mapping[str, str]) -> str | None:
    return attributes.get("traceparent")


def trace_id_from_traceparent(traceparent: str | None) -> str | None:
    """``00-<trace id>-<span id>-<flags>`` → trace id, or None when absent/malformed."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    if len(parts) == 4 and len(parts[1]) == 32:
        return parts[1]
    return None


def span_attributes_for_event(event: Any) -> dict[str, str]:
    return {
        "captionqc.job_id": str(getattr(event, "subject", "")),
        "cloudevents.event_id": str(getattr(event, "id", "")),
        "cloudevents.event_type": str(getattr(getattr(event, "type", ""), "value", "")),
    }
