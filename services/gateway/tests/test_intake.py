"""The intake door on the real platform: upstream ``job.requested`` messages published with the official client on
the emulator's intake topic, authenticated by the gateway's consumer and accepted into embedded PostgreSQL as
``POST /v1/jobs`` would, or dead-lettered with their reason and without their token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest

from captionqc.gateway.app import create_app
from captionqc.gateway.settings import GatewaySettings
from captionqc.gateway.subscriptions import accept_intake
from captionqc.runtime.consumer import DEAD_LETTER_MESSAGE, DEAD_LETTER_REASON
from captionqc.runtime.errors import MessageRefused, TransientError
from captionqc.runtime.http.auth import mint_local_token
from captionqc.runtime.testing.bus import pull_messages
from captionqc.schemas import EventType, Refusal, from_pubsub

from .conftest import SECRET, running
from .helpers import Db, change_tenant, intake_drained, job_request, publish_intake, register_tenants, wait_until


def token(tenant: str = "acme", scopes: tuple[str, ...] = ("jobs:write",), **kw: Any) -> str:
    return f"Bearer {mint_local_token(kw.pop('secret', SECRET), tenant=tenant, scopes=scopes, **kw)}"


@pytest.fixture
async def gateway(make_settings: Callable[..., GatewaySettings]) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(make_settings())) as client:
        yield client


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Db]:
    handle = Db(database_url)
    yield handle
    await handle.close()


async def internal_requests(project: str, expect: int, timeout: float = 15.0) -> list[Any]:
    messages = await asyncio.to_thread(pull_messages, project, "status-jobs", expect=expect, timeout=timeout)
    return [from_pubsub(m.data, dict(m.attributes)) for m in messages]


async def dead_letters(project: str, expect: int, timeout: float = 15.0) -> list[Any]:
    return await asyncio.to_thread(pull_messages, project, "status-dead-letter", expect=expect, timeout=timeout)


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
async def test_an_authenticated_request_becomes_a_job_and_an_internal_job_requested(
    gateway: httpx.AsyncClient, db: Db, pubsub_project: str, structured: bool
) -> None:
    request = job_request("acme")
    await asyncio.to_thread(publish_intake, pubsub_project, request, token(), structured=structured)

    (published,) = await internal_requests(pubsub_project, expect=1)
    assert published.type is EventType.JOB_REQUESTED
    assert published.source == "//captionqc/gateway"  # the gateway's own event, not the publisher's message
    assert published.id != request.id
    assert (published.data.job_id, published.data.tenant) == (request.data.job_id, "acme")
    assert published.data.media.uri == request.data.media.uri
    assert "authorization" not in published.extensions
    row = await db.job(request.data.job_id)
    assert (row.tenant, row.media_uri, row.finished_at) == ("acme", request.data.media.uri, None)
    assert await db.count_jobs() == 1


async def test_a_redelivered_or_republished_request_is_one_job(
    gateway: httpx.AsyncClient, db: Db, pubsub_project: str, pubsub_emulator: Any
) -> None:
    request = job_request("acme")
    for _ in range(3):  # the publisher retried: same ce-id, same body
        await asyncio.to_thread(publish_intake, pubsub_project, request, token())
    await internal_requests(pubsub_project, expect=1)
    await wait_until(lambda: asyncio.to_thread(intake_drained, pubsub_emulator, pubsub_project))
    assert await db.count_jobs() == 1
    assert await db.outbox_rows() == 1
    assert await internal_requests(pubsub_project, expect=1, timeout=1) == []
    assert await dead_letters(pubsub_project, expect=1, timeout=1) == []


def _claims_token(**claims: Any) -> str:
    base = {"sub": "playout", "tenant": "acme", "scope": "jobs:write", "iat": int(time.time())}
    return f"Bearer {jwt.encode({**base, **claims}, SECRET, algorithm='HS256')}"


REFUSED = [
    ("no-token", lambda: None, "acme", Refusal.UNAUTHENTICATED),
    ("not-bearer", lambda: "Basic dXNlcjpwYXNz", "acme", Refusal.UNAUTHENTICATED),
    ("garbage", lambda: "Bearer x.y.z", "acme", Refusal.UNAUTHENTICATED),
    ("bad-signature", lambda: token(secret="another-secret-of-the-right-size-0123"), "acme", Refusal.UNAUTHENTICATED),
    ("expired", lambda: token(ttl_s=-3600), "acme", Refusal.UNAUTHENTICATED),
    ("century", lambda: _claims_token(exp=int(time.time()) + 100 * 365 * 86400), "acme", Refusal.TOKEN_LIFETIME),
    ("read-scope", lambda: token(scopes=("jobs:read",)), "acme", Refusal.INSUFFICIENT_SCOPE),
    ("unknown-tenant", lambda: token("mallory"), "mallory", Refusal.UNKNOWN_TENANT),
    ("disabled-tenant", lambda: token("other-co"), "other-co", Refusal.TENANT_DISABLED),
    ("tenant-mismatch", lambda: token("beeb"), "acme", Refusal.TENANT_MISMATCH),
]


@pytest.mark.parametrize(("case", "authorization", "tenant", "reason"), REFUSED, ids=[c[0] for c in REFUSED])
async def test_a_request_that_does_not_authenticate_is_dead_lettered_with_its_reason_and_never_a_job(
    gateway: httpx.AsyncClient,
    db: Db,
    database_url: str,
    pubsub_project: str,
    case: str,
    authorization: Callable[[], str | None],
    tenant: str,
    reason: Refusal,
) -> None:
    await change_tenant(database_url, "other-co", enabled=False)
    bearer = authorization()
    await asyncio.to_thread(publish_intake, pubsub_project, job_request(tenant), bearer)

    (dead,) = await dead_letters(pubsub_project, expect=1)
    attributes = dict(dead.attributes)
    assert attributes[DEAD_LETTER_REASON] == reason.value
    assert "authorization" not in {k.lower() for k in attributes}
    if bearer is not None:
        assert bearer.split(" ")[-1] not in str(attributes)
    assert await db.count_jobs() == 0
    assert await db.outbox_rows() == 0
    if reason is Refusal.TENANT_MISMATCH:  # the record names neither tenant
        assert "acme" not in attributes[DEAD_LETTER_MESSAGE]
        assert "beeb" not in attributes[DEAD_LETTER_MESSAGE]


async def test_a_job_id_already_taken_is_dead_lettered_without_saying_whose(
    gateway: httpx.AsyncClient, db: Db, pubsub_project: str
) -> None:
    victim = job_request("acme")
    await asyncio.to_thread(publish_intake, pubsub_project, victim, token("acme"))
    await internal_requests(pubsub_project, expect=1)

    # Another tenant, and then the same tenant, name the victim's job id in new requests (new ce-ids).
    for publisher in ("beeb", "acme"):
        reuse = job_request(publisher, job_id=victim.data.job_id, media_uri="gs://broadcast-media/other.mp4")
        await asyncio.to_thread(publish_intake, pubsub_project, reuse, token(publisher))
        (dead,) = await dead_letters(pubsub_project, expect=1)
        assert dead.attributes[DEAD_LETTER_REASON] == Refusal.JOB_ID_TAKEN.value
        assert "acme" not in dead.attributes[DEAD_LETTER_MESSAGE]
    row = await db.job(victim.data.job_id)
    assert (row.tenant, row.media_uri) == ("acme", victim.data.media.uri)
    assert await db.count_jobs() == 1
    assert await internal_requests(pubsub_project, expect=1, timeout=1) == []


async def test_a_ce_id_reused_with_another_body_is_dead_lettered(
    gateway: httpx.AsyncClient, db: Db, pubsub_project: str
) -> None:
    first = job_request("acme")
    await asyncio.to_thread(publish_intake, pubsub_project, first, token())
    await internal_requests(pubsub_project, expect=1)

    for other in (
        job_request("acme", event_id=first.id),  # another job id
        job_request("acme", event_id=first.id, job_id=first.data.job_id, media_uri="gs://broadcast-media/b.mp4"),
    ):
        await asyncio.to_thread(publish_intake, pubsub_project, other, token())
        (dead,) = await dead_letters(pubsub_project, expect=1)
        assert dead.attributes[DEAD_LETTER_REASON] == Refusal.IDEMPOTENCY_CONFLICT.value
    assert await db.count_jobs() == 1
    # The same ce-id from another tenant is that tenant's own key: a job of its own.
    await asyncio.to_thread(publish_intake, pubsub_project, job_request("beeb", event_id=first.id), token("beeb"))
    (published,) = await internal_requests(pubsub_project, expect=1)
    assert published.data.tenant == "beeb"


async def test_a_media_uri_outside_the_policy_is_dead_lettered_with_the_rule(
    gateway: httpx.AsyncClient, db: Db, pubsub_project: str
) -> None:
    request = job_request("acme", media_uri="https://169.254.169.254/computeMetadata/v1/")
    await asyncio.to_thread(publish_intake, pubsub_project, request, token())
    (dead,) = await dead_letters(pubsub_project, expect=1)
    assert dead.attributes[DEAD_LETTER_REASON] == Refusal.METADATA_HOST.value
    assert await db.count_jobs() == 0


async def test_a_quota_refusal_is_retried_and_dead_lettered_only_on_the_last_attempt(
    make_settings: Callable[..., GatewaySettings], database_url: str, db: Db
) -> None:
    await register_tenants(database_url, "tiny", max_submissions_per_minute=1, gs_prefixes=("gs://broadcast-media/",))
    signed = {"extensions": {"authorization": token("tiny")}}
    app = create_app(make_settings(consume=False))
    async with running(app):
        runtime = app.state.runtime
        await accept_intake(runtime, job_request("tiny").model_copy(update=signed), final_attempt=False)
        second = job_request("tiny").model_copy(update=signed)
        with pytest.raises(TransientError, match="max_submissions_per_minute"):
            await accept_intake(runtime, second, final_attempt=False)
        with pytest.raises(MessageRefused) as refused:
            await accept_intake(runtime, second, final_attempt=True)
    assert refused.value.reason is Refusal.QUOTA_EXCEEDED
    assert await db.count_jobs() == 1


async def test_consuming_can_be_turned_off(
    make_settings: Callable[..., GatewaySettings], db: Db, pubsub_project: str, pubsub_emulator: Any
) -> None:
    app = create_app(make_settings(consume=False))
    async with running(app) as client:
        assert app.state.runtime.runner is None
        assert (await client.get("/readyz")).json()["checks"]["consumer"] is True
        await asyncio.to_thread(publish_intake, pubsub_project, job_request("acme"), token())
        await asyncio.sleep(1)
    state = pubsub_emulator.subscription_state(f"projects/{pubsub_project}/subscriptions/gateway-intake")
    assert (state["backlog"], state["delivered"]) == (1, 0)
    assert await db.count_jobs() == 0
