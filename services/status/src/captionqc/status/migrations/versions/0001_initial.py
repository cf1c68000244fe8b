"""status schema: jobs read model, findings, OCR'd captions, timeline, dead letters, webhook deliveries, inbox

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "status"
STAGES = ("ocr", "asr", "crosscheck")
_OPEN = sa.text("state IN ('accepted', 'running')")


def _stage_columns(stage: str) -> list[sa.Column[object]]:
    return [
        sa.Column(f"{stage}_state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column(f"{stage}_progress", sa.Float(), nullable=False, server_default=sa.text("0")),
        sa.Column(f"{stage}_message", sa.String(500), nullable=False, server_default=""),
        sa.Column(f"{stage}_first_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(f"{stage}_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(f"{stage}_seconds", sa.Float(), nullable=True),
        sa.Column(f"{stage}_processing_s", sa.Float(), nullable=True),
        sa.Column(f"{stage}_last_event_at", sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("media_uri", sa.String(2048), nullable=True),
        sa.Column("language", sa.String(35), nullable=True),
        sa.Column("callback_url", sa.String(2048), nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.String(64), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("failure_stage", sa.String(16), nullable=True),
        sa.Column("finding_counts", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("findings_total", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("captions_state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("captions_note", sa.String(500), nullable=True),
        *[c for stage in STAGES for c in _stage_columns(stage)],
        schema=SCHEMA,
    )
    op.create_index(
        "jobs_tenant_created_idx",
        "jobs",
        ["tenant", sa.text("created_at DESC"), sa.text("job_id DESC")],
        schema=SCHEMA,
    )
    op.create_index("jobs_open_idx", "jobs", ["first_seen_at"], schema=SCHEMA, postgresql_where=_OPEN)
    op.create_table(
        "findings",
        sa.Column("job_id", sa.String(36), sa.ForeignKey(f"{SCHEMA}.jobs.job_id", ondelete="CASCADE"), nullable=False),
        sa.Column("finding_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("caption_text", sa.String(2000), nullable=False),
        sa.Column("word", sa.String(256), nullable=False),
        sa.Column("suggestion", sa.String(256), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("evidence", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.PrimaryKeyConstraint("job_id", "finding_id", name="findings_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "caption_segments",
        sa.Column("job_id", sa.String(36), sa.ForeignKey(f"{SCHEMA}.jobs.job_id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("text", sa.String(2000), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "position", name="caption_segments_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "timeline",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False, unique=True),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("stage", sa.String(16), nullable=True),
        sa.Column("summary", sa.String(1000), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("timeline_job_idx", "timeline", ["job_id", "time", "seq"], schema=SCHEMA)
    op.create_table(
        "dead_letters",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("event_id", sa.String(200), nullable=True),
        sa.Column("event_type", sa.String(200), nullable=True),
        sa.Column("reason", sa.String(100), nullable=False),
        sa.Column("message", sa.String(2000), nullable=False),
        sa.Column("source_subscription", sa.String(500), nullable=True),
        sa.Column("attributes", postgresql.JSONB(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "job_id", sa.String(36), sa.ForeignKey(f"{SCHEMA}.jobs.job_id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "webhook_deliveries_pending_idx",
        "webhook_deliveries",
        ["created_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="inbox_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("inbox", "webhook_deliveries", "dead_letters", "timeline", "caption_segments", "findings", "jobs"):
        op.drop_table(table, schema=SCHEMA)
