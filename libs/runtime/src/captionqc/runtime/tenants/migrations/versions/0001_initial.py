"""tenants schema: the tenant registry

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "tenants"


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("webhook_secret", sa.Text, nullable=False),
        sa.Column("gs_prefixes", sa.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("max_jobs_in_flight", sa.Integer, nullable=False),
        sa.Column("max_submissions_per_minute", sa.Integer, nullable=False),
        sa.Column("max_streams", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("tenants", schema=SCHEMA)
