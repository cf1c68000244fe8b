"""SQL for jobs and idempotency keys; the caller's session owns the transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, tuple_
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
) -> None:
    await session.execute(
        jobs.insert().values(
            job_id=job_id,
            tenant=tenant,
            media_uri=job.media_uri,
            language=job.language,
            options=job.options.model_dump(mode="json"),
            callback_url=job.callback_url,
            request_id=request_id,
        )
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
