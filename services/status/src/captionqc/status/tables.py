"""The read model, in the ``status`` schema. Migrations in ``migrations/versions`` create the same tables."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from captionqc.runtime.messaging_tables import inbox_table

SCHEMA = "status"
STAGES = ("ocr", "asr", "crosscheck")

metadata = MetaData(schema=SCHEMA)

inbox = inbox_table(metadata)


def _stage_columns(stage: str) -> list[Column[object]]:
    return [
        Column(f"{stage}_state", String(16), nullable=False, server_default="pending"),
        Column(f"{stage}_progress", Float, nullable=False, server_default=text("0")),
        Column(f"{stage}_message", String(500), nullable=False, server_default=""),
        Column(f"{stage}_first_seen_at", DateTime(timezone=True)),
        Column(f"{stage}_completed_at", DateTime(timezone=True)),
        Column(f"{stage}_seconds", Float),
        Column(f"{stage}_processing_s", Float),
        # Wall clock of the last event of this stage the service received: what the deadline sweeper watches.
        Column(f"{stage}_last_event_at", DateTime(timezone=True)),
    ]


jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("tenant", String(63), nullable=False),
    Column("state", String(16), nullable=False),
    Column("requested", Boolean, nullable=False, server_default=text("false")),
    Column("media_uri", String(2048)),
    Column("language", String(35)),
    Column("callback_url", String(2048)),
    Column("trace_id", String(32)),
    Column("requested_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    Column("failure_reason", String(64)),
    Column("failure_message", Text),
    Column("failure_stage", String(16)),
    Column("finding_counts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("findings_total", Integer, nullable=False, server_default=text("0")),
    Column("captions_state", String(16), nullable=False, server_default="pending"),
    Column("captions_note", String(500)),
    *[c for stage in STAGES for c in _stage_columns(stage)],
)
# The list endpoint pages a tenant's jobs newest first; the sweeper scans the jobs that are not finished.
Index("jobs_tenant_created_idx", jobs.c.tenant, jobs.c.created_at.desc(), jobs.c.job_id.desc())
Index("jobs_open_idx", jobs.c.first_seen_at, postgresql_where=jobs.c.state.in_(["accepted", "running"]))

findings = Table(
    "findings",
    metadata,
    Column("job_id", String(36), ForeignKey(f"{SCHEMA}.jobs.job_id", ondelete="CASCADE"), nullable=False),
    Column("finding_id", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("start_s", Float, nullable=False),
    Column("end_s", Float, nullable=False),
    Column("caption_text", String(2000), nullable=False),
    Column("word", String(256), nullable=False),
    Column("suggestion", String(256)),
    Column("kind", String(32), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("evidence", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    PrimaryKeyConstraint("job_id", "finding_id", name="findings_pkey"),
)

caption_segments = Table(
    "caption_segments",
    metadata,
    Column("job_id", String(36), ForeignKey(f"{SCHEMA}.jobs.job_id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("start_s", Float, nullable=False),
    Column("end_s", Float, nullable=False),
    Column("text", String(2000), nullable=False),
    Column("confidence", Float, nullable=False),
    PrimaryKeyConstraint("job_id", "position", name="caption_segments_pkey"),
)

timeline = Table(
    "timeline",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", String(200), nullable=False),
    Column("job_id", String(36), nullable=False),
    Column("type", String(100), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("source", String(500), nullable=False),
    Column("stage", String(16)),
    Column("summary", String(1000), nullable=False),
    # One entry per event, an event being (source, id) as in the inbox.
    UniqueConstraint("source", "event_id", name="timeline_event_key"),
)
Index("timeline_job_idx", timeline.c.job_id, timeline.c.time, timeline.c.seq)

# Every message that reached the dead-letter topic, for whoever investigates: its attributes (cleaned: control
# characters escaped, secrets dropped) but never its data. ``job_id`` is the job it *claims*; ``orphan_reason`` says
# why it failed no job (NULL: it was one of that job's own events, and the job holds it in its timeline).
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("job_id", String(36)),
    Column("event_id", String(200)),
    Column("event_type", String(200)),
    Column("reason", String(100), nullable=False),
    Column("message", String(2000), nullable=False),
    Column("source_subscription", String(500)),
    Column("attributes", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("orphan_reason", String(64)),
    Column("tenant", String(63)),
    Column("flags", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("data_size", Integer, nullable=False, server_default=text("0")),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("job_id", String(36), ForeignKey(f"{SCHEMA}.jobs.job_id", ondelete="CASCADE"), primary_key=True),
    Column("tenant", String(63), nullable=False),
    Column("url", String(2048), nullable=False),
    # pending → delivered | failed (attempts exhausted) | refused (the URL broke the SSRF rules)
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_status", Integer),
    Column("last_error", String(1000)),
    Column("leased_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
)
Index(
    "webhook_deliveries_pending_idx",
    webhook_deliveries.c.created_at,
    postgresql_where=webhook_deliveries.c.state == "pending",
)
