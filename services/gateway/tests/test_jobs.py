"""POST /v1/jobs end to end on the real platform: the row, the outbox, the event on the topic, the trace."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from captionqc.gateway.app import create_app
from captionqc.gateway.settings import GatewaySettings
from captionqc.runtime.testing.bus import pull_messages
from captionqc.runtime.tracing import trace_id_from_traceparent
from captionqc.schemas import EventType, from_pubsub

from .conftest import bearer, running
from .helpers import Db, wait_until

GS = {"media_uri": "gs://broadcast-media/news/0612.mp4"}


async def test_accepted_job_is_published_once_with_ce_attributes_and_trace(
    make_settings: Callable[..., GatewaySettings],
    database_url: str,
    pubsub_project: str,
    pubsub_emulator: Any,
    spans: InMemorySpanExporter,
) -> None:
    body = {
        "media_uri": "gs://broadcast-media/news/0612.mp4",
        "language": "en-GB",
        "options": {"glossary": ["Ofcom"], "checks": ["misspelling", "wrong_word"]},
        "callback_url": "https://93.184.216.34/hooks/qc",
    }
    db = Db(database_url)
    try:
        async with running(create_app(make_settings(status_base_url="https://status.example"))) as client:
            r = await client.post("/v1/jobs", json=body, headers={**bearer(), "X-Request-ID": "req-42"})
            assert r.status_code == 202, r.text
            await wait_until(db.all_sent)
        accepted = r.json()
        job_id = accepted["job_id"]
        assert accepted == {
            "job_id": job_id,
            "status": "accepted",
            "links": {"status": f"https://status.example/v1/jobs/{job_id}"},
        }
        assert r.headers["location"] == accepted["links"]["status"]
        assert r.headers["x-request-id"] == "req-42"

        sub = f"projects/{pubsub_project}/subscriptions/status-jobs"
        assert pubsub_emulator.subscription_state(sub)["backlog"] == 1  # exactly one, before we pull it
        (message,) = await asyncio.to_thread(pull_messages, pubsub_project, "status-jobs", expect=1)
        attrs = dict(message.attributes)
        assert attrs["ce-type"] == "captionqc.job.requested"
        assert attrs["ce-specversion"] == "1.0"
        assert attrs["ce-source"] == "//captionqc/gateway"
        assert attrs["ce-subject"] == job_id
        assert attrs["ce-dataschema"] == "urn:captionqc:schema:captionqc.job.requested:v1"
        assert attrs["content-type"] == "application/json"
        event = from_pubsub(message.data, attrs)
        assert event.type is EventType.JOB_REQUESTED
        assert event.data.tenant == "acme"
        assert event.data.media.uri == body["media_uri"]
        assert event.data.language == "en-GB"
        assert event.data.options.glossary == ["Ofcom"]
        assert event.data.callback_url == body["callback_url"]

        (server_span,) = [
            s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER and s.name == "POST /v1/jobs"
        ]
        assert trace_id_from_traceparent(attrs["traceparent"]) == f"{server_span.context.trace_id:032x}"
        assert server_span.attributes is not None
        assert server_span.attributes["http.response.status_code"] == 202
        assert server_span.attributes["captionqc.request_id"] == "req-42"
        assert await db.count_jobs() == 1
    finally:
        await db.close()


async def test_incoming_traceparent_is_continued(client: httpx.AsyncClient, pubsub_project: str) -> None:
    trace_id = uuid.uuid4().hex
    r = await client.post("/v1/jobs", json=GS, headers={**bearer(), "traceparent": f"00-{trace_id}-{'a' * 16}-01"})
    assert r.status_code == 202
    (message,) = await asyncio.to_thread(pull_messages, pubsub_project, "ocr-jobs", expect=1)
    assert trace_id_from_traceparent(message.attributes["traceparent"]) == trace_id


async def test_idempotent_retries_get_the_same_answer_and_one_job(
    client: httpx.AsyncClient, database_url: str, pubsub_project: str
) -> None:
    headers = {**bearer(), "Idempotency-Key": "order-7781"}
    first = await client.post("/v1/jobs", json=GS, headers=headers)
    # The same request spelled differently (defaults written out, other key order) is the same request.
    same = {"language": "en-US", **GS}
    retries = await asyncio.gather(*(client.post("/v1/jobs", json=same, headers=headers) for _ in range(4)))
    assert first.status_code == 202
    for r in retries:
        assert (r.status_code, r.json()) == (first.status_code, first.json())
        assert r.headers["location"] == first.headers["location"]
        assert r.headers["idempotent-replayed"] == "true"
    db = Db(database_url)
    try:
        assert await db.count_jobs() == 1
        assert await db.outbox_rows() == 1
    finally:
        await db.close()
    got = await asyncio.to_thread(pull_messages, pubsub_project, "ocr-jobs", expect=2, timeout=2)
    assert [m.attributes["ce-subject"] for m in got] == [first.json()["job_id"]]


async def test_concurrent_first_requests_with_one_key_make_one_job(
    client: httpx.AsyncClient, database_url: str
) -> None:
    headers = {**bearer(), "Idempotency-Key": "race"}
    responses = await asyncio.gather(*(client.post("/v1/jobs", json=GS, headers=headers) for _ in range(6)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["job_id"] for r in responses}) == 1
    db = Db(database_url)
    try:
        assert await db.count_jobs() == 1
    finally:
        await db.close()


async def test_expired_keys_are_forgotten_and_purged(client: httpx.AsyncClient, database_url: str) -> None:
    db = Db(database_url)
    try:
        first = await client.post("/v1/jobs", json=GS, headers={**bearer(), "Idempotency-Key": "nightly"})
        other = await client.post("/v1/jobs", json=GS, headers={**bearer("beeb"), "Idempotency-Key": "old"})
        assert (first.status_code, other.status_code) == (202, 202)
        await db.age_idempotency_keys(86400 + 60)  # the default TTL is a day
        again = await client.post("/v1/jobs", json=GS, headers={**bearer(), "Idempotency-Key": "nightly"})
        assert again.status_code == 202
        assert "idempotent-replayed" not in again.headers
        assert again.json()["job_id"] != first.json()["job_id"]
        # The other tenant's expired key went with the same request; the fresh one stays.
        assert await db.idempotency_keys() == {("acme", "nightly")}
        replay = await client.post("/v1/jobs", json=GS, headers={**bearer(), "Idempotency-Key": "nightly"})
        assert replay.json()["job_id"] == again.json()["job_id"]
        assert await db.count_jobs() == 3
    finally:
        await db.close()


async def test_key_reused_with_another_body_is_409_and_keys_are_per_tenant(client: httpx.AsyncClient) -> None:
    headers = {**bearer(), "Idempotency-Key": "k-1"}
    first = await client.post("/v1/jobs", json=GS, headers=headers)
    assert first.status_code == 202
    other = await client.post("/v1/jobs", json={**GS, "language": "fr"}, headers=headers)
    assert other.status_code == 409
    assert other.json() == {
        "error": "conflict",
        "message": "This Idempotency-Key was already used with a different request body.",
        "request_id": other.headers["x-request-id"],
        "details": [
            {
                "loc": ["header", "Idempotency-Key"],
                "msg": "This Idempotency-Key was already used with a different request body.",
                "type": "idempotency_conflict",
            }
        ],
    }
    elsewhere = await client.post(
        "/v1/jobs", json={**GS, "language": "fr"}, headers={**bearer("other-co"), "Idempotency-Key": "k-1"}
    )
    assert elsewhere.status_code == 202
    assert elsewhere.json()["job_id"] != first.json()["job_id"]


async def test_unknown_fields_and_bad_values_are_422_in_the_error_shape(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/jobs", json={**GS, "priority": "high"}, headers=bearer())
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "validation_error"
    assert body["details"] == [
        {"loc": ["body", "priority"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]
    r = await client.post("/v1/jobs", json={**GS, "options": {"checks": ["telepathy"]}}, headers=bearer())
    assert r.status_code == 422
    assert r.json()["details"][0]["loc"] == ["body", "options", "checks", 0]
    r = await client.post("/v1/jobs", content=b"{not json", headers={**bearer(), "Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"] == "validation_error"
    r = await client.post("/v1/jobs", content=b"media_uri=x", headers={**bearer(), "Content-Type": "text/plain"})
    assert r.status_code == 415
    assert r.json()["error"] == "unsupported_media_type"
    r = await client.post("/v1/jobs", json=GS, headers={**bearer(), "Idempotency-Key": "x" * 300})
    assert r.status_code == 422
    assert r.json()["details"][0]["loc"] == ["header", "Idempotency-Key"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("options", {"glossary": ["Of\u0000com"]}),  # PostgreSQL text/JSONB cannot store NUL: this was a 500
        ("options", {"ng_words": ["\u0089"]}),  # a C1 control character
        ("callback_url", "https://hooks.example.com/\u0007"),
        ("media_uri", "gs://broadcast-media/a\u0000.mp4"),
    ],
)
async def test_text_that_cannot_be_stored_is_422(client: httpx.AsyncClient, field: str, value: object) -> None:
    body = json.dumps({**GS, field: value}).encode()  # ASCII JSON: the characters travel as \u escapes
    r = await client.post("/v1/jobs", content=body, headers={**bearer(), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "control characters or unpaired surrogates" in r.json()["details"][0]["msg"]


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    big = {**GS, "options": {"glossary": ["word"] * 2000}}  # over the test's 4 KiB limit
    r = await client.post("/v1/jobs", json=big, headers=bearer())
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"

    async def stream() -> Any:
        # Chunked, no Content-Length: counted while it arrives.
        data = json.dumps(big).encode()
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    r = await client.post("/v1/jobs", content=stream(), headers={**bearer(), "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["request_id"] == r.headers["x-request-id"]


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"database": True, "outbox_relay": True, "consumer": True}}
