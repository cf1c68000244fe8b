"""gateway schema: when a job finished, and an index of unfinished jobs for the jobs-in-flight quota

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

SCHEMA = "gateway"


def upgrade() -> None:
    # Nullable, no default: adding it rewrites nothing. Jobs accepted before this migration stay unfinished and
    # stop counting once they are older than the stale window (in_flight_stale_after_s).
    op.add_column("jobs", sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA)
    op.create_index(
        "jobs_in_flight_idx",
        "jobs",
        ["tenant", "created_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("finished_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("jobs_in_flight_idx", table_name="jobs", schema=SCHEMA)
    op.drop_column("jobs", "finished_at", schema=SCHEMA)
