"""The cross-check's own schema: what has arrived per job, and whether its outcome has been decided."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, String, Table, func
from sqlalchemy.dialects.postgresql import JSONB

from captionqc.runtime.messaging_tables import inbox_table, outbox_table

SCHEMA = "crosscheck"
metadata = MetaData(schema=SCHEMA)

# One row per job. Inputs arrive in any order; ``decided_at`` is set by the one transaction that computes the
# outcome (findings or failure), which is what makes the computation happen exactly once.
job_inputs = Table(
    "job_inputs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("tenant", String(63), nullable=False),
    Column("job", JSONB, nullable=True),
    Column("ocr", JSONB, nullable=True),
    Column("asr", JSONB, nullable=True),
    Column("failure", JSONB, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("outcome_event_id", String(64), nullable=True),
)

inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
