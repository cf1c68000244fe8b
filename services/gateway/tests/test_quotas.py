"""Per-tenant quotas on the real platform: submissions per minute and jobs in flight, counted in PostgreSQL (so two
gateway replicas share them), 429 with ``Retry-After``; jobs stop counting when their final event comes back on
the findings topic, or when they are older than the stale window."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from captionqc.gateway.app import create_app
from captionqc.gateway.settings import GatewaySettings
from captionqc.runtime.pubsub import EventPublisher
from captionqc.schemas import (
    CrosscheckCompleted,
    EventType,
    FailureReason,
    FindingsSummary,
    Stage,
    StageFailed,
    new_event,
)

from .conftest import bearer, running
from .helpers import Db, register_tenants, wait_until

GS = {"media_uri": "gs://broadcast-media/news/0612.mp4"}
AREA = ("gs://broadcast-media/",)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Db]:
    handle = Db(database_url)
    yield handle
    await handle.close()


def assert_quota_refusal(response: httpx.Response, quota: str) -> int:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"] == "quota_exceeded"
    assert body["details"][0]["loc"] == ["quota", quota]
    assert body["details"][0]["type"] == "quota_exceeded"
    assert quota in body["message"]
    return int(response.headers["retry-after"])


async def test_submissions_per_minute(make_settings: Callable[..., GatewaySettings], database_url: str, db: Db) -> None:
    await register_tenants(database_url, "rush", max_submissions_per_minute=3, gs_prefixes=AREA)
    async with running(create_app(make_settings())) as client:
        first = await client.post("/v1/jobs", json=GS, headers={**bearer("rush"), "Idempotency-Key": "k1"})
        for _ in range(2):
            assert (await client.post("/v1/jobs", json=GS, headers=bearer("rush"))).status_code == 202
        refused = await client.post("/v1/jobs", json=GS, headers=bearer("rush"))
        retry_after = assert_quota_refusal(refused, "max_submissions_per_minute")
        assert 1 <= retry_after <= 60
        # A replay is the earlier answer, not a new submission: it neither counts nor is refused.
        replay = await client.post("/v1/jobs", json=GS, headers={**bearer("rush"), "Idempotency-Key": "k1"})
        assert (replay.status_code, replay.json()) == (202, first.json())
        # Other tenants are not held up by this one's quota.
        assert (await client.post("/v1/jobs", json=GS, headers=bearer("acme"))).status_code == 202
        assert await db.count_jobs() == 4

        await db.age_jobs(61)  # a minute later
        assert (await client.post("/v1/jobs", json=GS, headers=bearer("rush"))).status_code == 202


def completed(job_id: str, tenant: str) -> Any:
    payload = CrosscheckCompleted(job_id=job_id, tenant=tenant, findings=[], summary=FindingsSummary(counts={}))
    return new_event(EventType.CROSSCHECK_COMPLETED, payload, source="//captionqc/crosscheck")


def failed(job_id: str, tenant: str) -> Any:
    payload = StageFailed(
        job_id=job_id, tenant=tenant, stage=Stage.CROSSCHECK, reason=FailureReason.MEDIA_NOT_FOUND, message="gone"
    )
    return new_event(EventType.CROSSCHECK_FAILED, payload, source="//captionqc/crosscheck")


async def test_jobs_in_flight_free_up_when_their_final_event_comes_back(
    make_settings: Callable[..., GatewaySettings], database_url: str, db: Db, pubsub_project: str
) -> None:
    await register_tenants(database_url, "busy", max_jobs_in_flight=2, gs_prefixes=AREA)
    publisher = EventPublisher(pubsub_project)
    try:
        async with running(create_app(make_settings(quota_retry_after_s=17))) as client:
            ids = [(await client.post("/v1/jobs", json=GS, headers=bearer("busy"))).json()["job_id"] for _ in range(2)]
            refused = await client.post("/v1/jobs", json=GS, headers=bearer("busy"))
            assert assert_quota_refusal(refused, "max_jobs_in_flight") == 17

            # Another tenant's event naming busy's job does not finish it.
            await publisher.publish(completed(ids[0], "mallory"))
            await publisher.publish(completed(str(uuid.uuid4()), "busy"))  # not a job of ours: ignored
            # The job's own final event, completed or failed, does.
            await publisher.publish(failed(ids[1], "busy"))

            await wait_until(lambda: _finished(db, ids[1]))
            assert (await db.job(ids[0])).finished_at is None
            assert (await client.post("/v1/jobs", json=GS, headers=bearer("busy"))).status_code == 202
            assert (await client.post("/v1/jobs", json=GS, headers=bearer("busy"))).status_code == 429

            await publisher.publish(completed(ids[0], "busy"))
            await publisher.publish(completed(ids[0], "busy"))  # redelivered: still one finish
            await wait_until(lambda: _finished(db, ids[0]))
            assert (await client.post("/v1/jobs", json=GS, headers=bearer("busy"))).status_code == 202
    finally:
        publisher.close()


async def _finished(db: Db, job_id: str) -> bool:
    return (await db.job(job_id)).finished_at is not None


async def test_a_job_never_finished_stops_counting_after_the_stale_window(
    make_settings: Callable[..., GatewaySettings], database_url: str, db: Db
) -> None:
    await register_tenants(database_url, "lost", max_jobs_in_flight=1, gs_prefixes=AREA)
    async with running(create_app(make_settings(in_flight_stale_after_s=600, consume=False))) as client:
        assert (await client.post("/v1/jobs", json=GS, headers=bearer("lost"))).status_code == 202
        assert (await client.post("/v1/jobs", json=GS, headers=bearer("lost"))).status_code == 429
        await db.age_jobs(601)  # its final event was lost to a dead letter
        assert (await client.post("/v1/jobs", json=GS, headers=bearer("lost"))).status_code == 202


async def test_two_replicas_never_both_take_the_last_slot(
    make_settings: Callable[..., GatewaySettings], database_url: str, db: Db
) -> None:
    await register_tenants(database_url, "race", max_jobs_in_flight=3, gs_prefixes=AREA)
    async with AsyncExitStack() as stack:
        # Two gateway processes' worth of apps: each its own engine and pool, one database.
        replicas = [
            await stack.enter_async_context(running(create_app(make_settings(consume=False, db_pool_size=10))))
            for _ in range(2)
        ]
        for _ in range(3):  # several rounds: a lost race shows up as more than 3 accepted
            responses = await asyncio.gather(
                *(replicas[i % 2].post("/v1/jobs", json=GS, headers=bearer("race")) for i in range(16))
            )
            statuses = sorted(r.status_code for r in responses)
            assert statuses.count(202) <= 3, statuses
            await db.age_jobs(7201)  # free the slots for the next round
        assert await db.count_jobs() == 9
