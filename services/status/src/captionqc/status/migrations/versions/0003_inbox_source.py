"""status inbox and timeline: an event is (source, id), as CloudEvents defines its identity

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "status"


def upgrade() -> None:
    # Rows already there were claimed by id alone; '' keeps them as claims (of an unknown source) without a rewrite.
    op.add_column("inbox", sa.Column("source", sa.String(500), nullable=False, server_default=""), schema=SCHEMA)
    op.drop_constraint("inbox_pkey", "inbox", schema=SCHEMA, type_="primary")
    op.create_primary_key("inbox_pkey", "inbox", ["consumer", "source", "event_id"], schema=SCHEMA)
    op.drop_constraint("timeline_event_id_key", "timeline", schema=SCHEMA, type_="unique")
    op.create_unique_constraint("timeline_event_key", "timeline", ["source", "event_id"], schema=SCHEMA)


def downgrade() -> None:
    # Two sources' events with one id cannot share the old keys: keep the first of each id.
    op.execute("DELETE FROM status.timeline a USING status.timeline b WHERE a.event_id = b.event_id AND a.seq > b.seq")
    op.drop_constraint("timeline_event_key", "timeline", schema=SCHEMA, type_="unique")
    op.create_unique_constraint("timeline_event_id_key", "timeline", ["event_id"], schema=SCHEMA)
    op.execute(
        "DELETE FROM status.inbox a USING status.inbox b "
        "WHERE a.consumer = b.consumer AND a.event_id = b.event_id AND a.ctid > b.ctid"
    )
    op.drop_constraint("inbox_pkey", "inbox", schema=SCHEMA, type_="primary")
    op.create_primary_key("inbox_pkey", "inbox", ["consumer", "event_id"], schema=SCHEMA)
    op.drop_column("inbox", "source", schema=SCHEMA)
