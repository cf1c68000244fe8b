"""SQL for jobs, idempotency keys and admissions (quotas); the caller's session owns the transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from captionqc.gateway.tables import idempotency_keys, jobs
from captionqc.schemas.api import JobCreate


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int
    body: dict[str, Any]


async def insert_job(
    session: AsyncSession, *, job_id: uuid.UUID, tenant: str, job: JobCreate, request_id: str | None
) -> bool:
    """Record the job; False if ``job_id`` is already a job's (anyone's), and nothing was written."""
    inserted = await session.execute(
        pg_insert(jobs)
        .values(
            job_id=job_id,
            tenant=tenant,
            media_uri=job.media_uri,
            language=job.language,
            options=job.options.model_dump(mode="json"),
            callback_url=job.callback_url,
            request_id=request_id,
            # The admission's own time, not the transaction's start: it may have waited for the admissions lock.
            created_at=func.clock_timestamp(),
        )
        .on_conflict_do_nothing(index_elements=["job_id"])
        .returning(jobs.c.job_id)
    )
    return inserted.first() is not None


async def mark_finished(session: AsyncSession, *, job_id: uuid.UUID, tenant: str) -> bool:
    """Note that the tenant's job has finished (it stops counting as in flight); False if there was nothing to do:
    no such job of that tenant's, or already finished."""
    result = await session.execute(
        update(jobs)
        .where(jobs.c.job_id == job_id, jobs.c.tenant == tenant, jobs.c.finished_at.is_(None))
        .values(finished_at=func.now())
        .returning(jobs.c.job_id)
    )
    return result.first() is not None


@dataclass(frozen=True)
class Admissions:
    """A tenant's recent admissions, as the quotas see them."""

    submitted_last_minute: int
    oldest_in_last_minute: datetime | None
    in_flight: int
    now: datetime


async def lock_admissions(session: AsyncSession, tenant: str) -> None:
    """Serialise the tenant's admissions until the transaction ends: a replica counting after this sees every job
    another replica admitted before, so two cannot both take the last slot. Other tenants are not held up."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('captionqc-gateway-admissions'), hashtext(:tenant))"),
        {"tenant": tenant},
    )


async def count_admissions(session: AsyncSession, tenant: str, *, stale_after_s: float) -> Admissions:
    """Jobs the tenant submitted in the last 60 s, and its jobs in flight (unfinished, younger than
    ``stale_after_s``: a job whose final event was lost stops counting then)."""
    # clock_timestamp(), not now(): the transaction may have waited for the admissions lock.
    now = (await session.execute(select(func.clock_timestamp()))).scalar_one()
    minute = func.make_interval(0, 0, 0, 0, 0, 0, 60)
    recent = (
        await session.execute(
            select(func.count(), func.min(jobs.c.created_at)).where(
                jobs.c.tenant == tenant, jobs.c.created_at > now - minute
            )
        )
    ).one()
    stale = func.make_interval(0, 0, 0, 0, 0, 0, stale_after_s)
    in_flight = (
        await session.execute(
            select(func.count()).where(
                jobs.c.tenant == tenant, jobs.c.finished_at.is_(None), jobs.c.created_at > now - stale
            )
        )
    ).scalar_one()
    return Admissions(
        submitted_last_minute=int(recent[0]), oldest_in_last_minute=recent[1], in_flight=int(in_flight), now=now
    )


# Expired keys removed per request that brings a key: a small, bounded amount of work that keeps up with any rate
# of new keys, without a sweeper process.
PURGE_BATCH = 20


async def claim_idempotency_key(
    session: AsyncSession,
    *,
    tenant: str,
    key: str,
    request_hash: str,
    job_id: uuid.UUID,
    response: StoredResponse,
    ttl_s: float,
) -> StoredResponse | None:
    """Record ``key`` for this request; None if it is ours now, else the response stored by the earlier request.

    A concurrent request with the same key blocks on the unique index until the first one commits (then sees
    its row) or rolls back (then takes the key itself): two racing retries never create two jobs. A key older
    than ``ttl_s`` is forgotten first, so it starts afresh.
    """
    cutoff = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, ttl_s)
    await session.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.tenant == tenant, idempotency_keys.c.key == key, idempotency_keys.c.created_at < cutoff
        )
    )
    expired = (
        select(idempotency_keys.c.tenant, idempotency_keys.c.key)
        .where(idempotency_keys.c.created_at < cutoff)
        .order_by(idempotency_keys.c.created_at)
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    await session.execute(
        delete(idempotency_keys).where(tuple_(idempotency_keys.c.tenant, idempotency_keys.c.key).in_(expired))
    )
    inserted = (
        await session.execute(
            pg_insert(idempotency_keys)
            .values(
                tenant=tenant,
                key=key,
                request_hash=request_hash,
                job_id=job_id,
                response_status=response.status_code,
                response_body=response.body,
            )
            .on_conflict_do_nothing(index_elements=["tenant", "key"])
            .returning(idempotency_keys.c.key)
        )
    ).first()
    if inserted is not None:
        return None
    row = (
        await session.execute(
            select(
                idempotency_keys.c.request_hash, idempotency_keys.c.response_status, idempotency_keys.c.response_body
            ).where(idempotency_keys.c.tenant == tenant, idempotency_keys.c.key == key)
        )
    ).one()
    return StoredResponse(request_hash=row.request_hash, status_code=row.response_status, body=row.response_body)
