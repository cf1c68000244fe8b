"""dead letters: why one failed no job (orphan_reason), the event's tenant, cleaning flags, data size

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "status"


def upgrade() -> None:
    op.add_column("dead_letters", sa.Column("orphan_reason", sa.String(64), nullable=True), schema=SCHEMA)
    op.add_column("dead_letters", sa.Column("tenant", sa.String(63), nullable=True), schema=SCHEMA)
    op.add_column(
        "dead_letters",
        sa.Column("flags", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        schema=SCHEMA,
    )
    op.add_column(
        "dead_letters",
        sa.Column("data_size", sa.Integer(), nullable=False, server_default=sa.text("0")),
        schema=SCHEMA,
    )
    # Rows recorded before this revision keep orphan_reason NULL: they were judged by the rules of their time.


def downgrade() -> None:
    for column in ("data_size", "flags", "tenant", "orphan_reason"):
        op.drop_column("dead_letters", column, schema=SCHEMA)
