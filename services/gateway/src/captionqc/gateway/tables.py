"""The gateway's tables, in its own ``gateway`` schema (migrated by Alembic: see migrations/)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from captionqc.runtime.messaging_tables import outbox_table

SCHEMA = "gateway"
metadata = MetaData(schema=SCHEMA)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", Uuid, primary_key=True),
    Column("tenant", String(63), nullable=False),
    Column("media_uri", Text, nullable=False),
    Column("language", String(35), nullable=False),
    Column("options", JSONB, nullable=False),
    Column("callback_url", Text, nullable=True),
    Column("request_id", String(128), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # When the job's final event (crosscheck.completed or .failed) came back on the findings topic; NULL while
    # the job is in flight. Only the jobs-in-flight quota reads it.
    Column("finished_at", DateTime(timezone=True), nullable=True),
)
# Submissions per minute: a tenant's jobs by age.
Index("jobs_tenant_created_idx", jobs.c.tenant, jobs.c.created_at)
# Jobs in flight: a tenant's unfinished jobs by age (older than the stale window no longer count).
Index("jobs_in_flight_idx", jobs.c.tenant, jobs.c.created_at, postgresql_where=jobs.c.finished_at.is_(None))

# One row per (tenant, Idempotency-Key): the hash of the canonical request body and the response given, so a
# retry gets the very same answer and a reuse with another body is refused.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant", String(63), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("job_id", Uuid, nullable=False),
    Column("response_status", Integer, nullable=False),
    Column("response_body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant", "key", name="idempotency_keys_pkey"),
)
Index("idempotency_keys_created_idx", idempotency_keys.c.created_at)  # expired keys are purged oldest first

outbox = outbox_table(metadata)
