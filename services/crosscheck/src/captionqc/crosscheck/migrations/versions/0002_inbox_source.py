"""crosscheck inbox: dedupe on (source, id), as CloudEvents defines an event's identity

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "crosscheck"


def upgrade() -> None:
    # Rows already there were claimed by id alone; '' keeps them as claims (of an unknown source) without a rewrite.
    op.add_column("inbox", sa.Column("source", sa.String(500), nullable=False, server_default=""), schema=SCHEMA)
    op.drop_constraint("inbox_pkey", "inbox", schema=SCHEMA, type_="primary")
    op.create_primary_key("inbox_pkey", "inbox", ["consumer", "source", "event_id"], schema=SCHEMA)


def downgrade() -> None:
    # Two sources' events with one id cannot share the old key: keep the first claim of each id.
    op.execute(
        "DELETE FROM crosscheck.inbox a USING crosscheck.inbox b "
        "WHERE a.consumer = b.consumer AND a.event_id = b.event_id AND a.ctid > b.ctid"
    )
    op.drop_constraint("inbox_pkey", "inbox", schema=SCHEMA, type_="primary")
    op.create_primary_key("inbox_pkey", "inbox", ["consumer", "event_id"], schema=SCHEMA)
    op.drop_column("inbox", "source", schema=SCHEMA)
