"""A token sent in a query string is recorded nowhere: not in a span attribute, not in a log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Query
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from captionqc.runtime.http.errors import install_error_handlers
from captionqc.runtime.http.middleware import install_middleware
from captionqc.runtime.logs import CloudLoggingFormatter, configure_logging, redact_query_strings
from captionqc.runtime.settings import ServiceSettings
from captionqc.runtime.tracing import configure_tracing, redact_url

SECRET = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl"


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_middleware(app, max_body_bytes=100)

    @app.get("/v1/jobs/{job_id}")
    async def job(job_id: str, cursor: Annotated[str | None, Query(max_length=8)] = None) -> dict[str, str]:
        return {"job_id": job_id}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    configure_tracing(ServiceSettings())  # what every service's lifespan does first
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def _everything_recorded(spans: InMemorySpanExporter) -> str:
    recorded = []
    for span in spans.get_finished_spans():
        recorded.append(span.name)
        recorded.extend(f"{k}={v!r}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            recorded.extend(f"{k}={v!r}" for k, v in (event.attributes or {}).items())
    return "\n".join(recorded)


@pytest.mark.parametrize(
    "target",
    [
        f"/v1/jobs/j1?access_token={SECRET}",
        f"/v1/jobs/j1?{SECRET}",  # a bare secret is a parameter name
        f"/v1/jobs/j1?cursor={SECRET}",  # refused (422): the refusal must not echo it either
        f"/nowhere?access_token={SECRET}",  # 404
    ],
)
async def test_no_span_attribute_and_no_log_record_holds_the_query(
    client: httpx.AsyncClient, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture, target: str
) -> None:
    caplog.set_level(logging.DEBUG)
    r = await client.get(target)
    assert SECRET not in r.text
    server = [s for s in spans.get_finished_spans() if (s.attributes or {}).get("url.path")]
    assert server, "the server span was recorded"  # FastAPI's own telemetry ran, and set url.query…
    assert server[0].attributes is not None
    assert server[0].attributes["url.query"] == "REDACTED"  # … which is all that is left of it
    assert SECRET not in _everything_recorded(spans)
    # The server's records hold no query; and as the services write them (the test client's own httpx line too).
    raw = logging.Formatter("%(name)s %(message)s %(args)s")
    assert not [rec.name for rec in caplog.records if rec.name != "httpx" and SECRET in raw.format(rec)]
    written = CloudLoggingFormatter("gateway", "captionqc-local")
    assert not [rec.name for rec in caplog.records if SECRET in written.format(rec)]


@pytest.fixture
def server_logging() -> Iterator[io.StringIO]:
    """uvicorn's own access-log handler as its default log config installs it; the logging state is restored."""
    root, access = logging.getLogger(), logging.getLogger("uvicorn.access")
    saved = (root.handlers[:], root.level, access.handlers[:], access.propagate, access.level)
    own = io.StringIO()
    access.handlers = [logging.StreamHandler(own)]
    access.propagate = False
    try:
        yield own
    finally:
        root.handlers, root.level = saved[0], saved[1]
        access.handlers, access.propagate, access.level = saved[2], saved[3], saved[4]


def test_server_access_lines_and_stack_traces_lose_their_query(
    server_logging: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("gateway", "captionqc-local", "DEBUG")
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.INFO)  # someone turned the server's access log back on
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET", f"/v1/jobs?access_token={SECRET}", "1.1", 401)
    try:
        raise RuntimeError(f"Client error '404 Not Found' for url 'https://hooks.example.com/h?token={SECRET}'")
    except RuntimeError:
        logging.getLogger("captionqc.test").exception("fetch failed for https://hooks.example.com/h?token=%s", SECRET)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert server_logging.getvalue() == ""  # nothing bypasses the JSON formatter
    assert lines[0]["logger"] == "uvicorn.access"
    assert lines[0]["message"] == '127.0.0.1:50000 - "GET /v1/jobs?REDACTED HTTP/1.1" 401'
    assert lines[1]["message"] == "fetch failed for https://hooks.example.com/h?REDACTED"
    assert "h?REDACTED'" in lines[1]["stack_trace"]
    assert SECRET not in json.dumps(lines)


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("GET /v1/jobs?a=1&b=2 HTTP/1.1", "GET /v1/jobs?REDACTED HTTP/1.1"),
        ("POST https://h.example?sig=abc done", "POST https://h.example?REDACTED done"),
        ("url 'https://h/x?token=s'", "url 'https://h/x?REDACTED'"),
        ("a question? no URL", "a question? no URL"),
    ],
)
def test_redact_query_strings(text: str, redacted: str) -> None:
    assert redact_query_strings(text) == redacted


def test_redact_url() -> None:
    assert redact_url("https://h/x?token=s#f") == "https://h/x?REDACTED"
    assert redact_url("/v1/jobs#frag") == "/v1/jobs"
    assert redact_url("/v1/jobs") == "/v1/jobs"
