"""gateway schema: index idempotency keys by age, so expired ones are purged without a scan

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.create_index("idempotency_keys_created_idx", "idempotency_keys", ["created_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("idempotency_keys_created_idx", table_name="idempotency_keys", schema=SCHEMA)
