"""Never lost: a job committed while the relay is dead is published by the next process. And the OpenAPI."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from captionqc.gateway.app import create_app
from captionqc.gateway.runtime import GatewayRuntime
from captionqc.gateway.settings import GatewaySettings
from captionqc.runtime.testing.bus import pull_messages

from .conftest import bearer, running
from .helpers import Db, wait_until

GS = {"media_uri": "gs://broadcast-media/news/0612.mp4"}


async def test_relay_killed_between_commit_and_publish_then_restart_publishes_once(
    make_settings: Callable[..., GatewaySettings], database_url: str, pubsub_project: str, pubsub_emulator: Any
) -> None:
    db = Db(database_url)
    # A long poll interval: after the kill nothing in the first process could publish by polling either.
    settings = make_settings(relay_poll_interval_s=30)
    try:
        first = create_app(settings)
        async with running(first) as client:
            runtime: GatewayRuntime = first.state.runtime
            # Kill the relay the way a crashed process would leave it: its task gone, mid-wait, nothing drained.
            task = runtime.relay._task
            assert task is not None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert not runtime.relay.running
            assert (await client.get("/readyz")).status_code == 503  # no relay → not ready

            r = await client.post("/v1/jobs", json=GS, headers=bearer())
            assert r.status_code == 202
            job_id = r.json()["job_id"]
            assert await db.unsent() == 1
        # The process is gone; the row is still there, unsent, and nothing reached the topic.
        sub = f"projects/{pubsub_project}/subscriptions/ocr-jobs"
        assert pubsub_emulator.subscription_state(sub)["backlog"] == 0
        assert await db.unsent() == 1

        async with running(create_app(make_settings())):
            await wait_until(db.all_sent)
        assert pubsub_emulator.subscription_state(sub)["backlog"] == 1
        got = await asyncio.to_thread(pull_messages, pubsub_project, "ocr-jobs", expect=2, timeout=2)
        assert [m.attributes["ce-subject"] for m in got] == [job_id]
    finally:
        await db.close()


async def test_shutdown_drains_what_was_committed(
    make_settings: Callable[..., GatewaySettings], database_url: str, pubsub_project: str
) -> None:
    db = Db(database_url)
    try:
        async with running(create_app(make_settings(relay_poll_interval_s=30))) as client:
            responses = await asyncio.gather(*(client.post("/v1/jobs", json=GS, headers=bearer()) for _ in range(5)))
        assert {r.status_code for r in responses} == {202}
        assert await db.unsent() == 0
    finally:
        await db.close()
    got = await asyncio.to_thread(pull_messages, pubsub_project, "ocr-jobs", expect=5)
    assert sorted(m.attributes["ce-subject"] for m in got) == sorted(r.json()["job_id"] for r in responses)


async def test_openapi_documents_every_response_with_its_model(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    op = doc["paths"]["/v1/jobs"]["post"]
    assert op["summary"]
    assert op["description"].startswith("Accept a job")
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobCreate"}
    for status in ("401", "403", "409", "413", "415", "422", "500"):
        schema = op["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, status
    assert op["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobAccepted"
    }
    assert "Location" in op["responses"]["202"]["headers"]
    assert op["security"] == [{"HTTPBearer": []}]
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT with `tenant` and `scope` claims.",
    }
    for name in ("JobCreate", "JobOptions", "RegionHint", "CheckKind", "ErrorBody", "ErrorDetail"):
        assert name in doc["components"]["schemas"], name
    assert {"/healthz", "/readyz"} <= set(doc["paths"])
    assert "/v1/jobs/{job_id}" not in doc["paths"]  # reads belong to the status service
