"""The tenant registry's table, in its own ``tenants`` schema (migrated with Alembic: see migrations/).

The gateway writes it (``captionqc tenants …``) and checks every token against it; the status service reads it
for the same check and for each tenant's webhook secret and stream cap. It is a platform table, not one
service's, which is why it lives in the runtime library with its own migrations.
"""

from __future__ import annotations

from sqlalchemy import ARRAY, Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, func, text

SCHEMA = "tenants"
metadata = MetaData(schema=SCHEMA)

tenants = Table(
    "tenants",
    metadata,
    Column("tenant", String(63), primary_key=True),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    # HMAC key of the tenant's signed webhooks (X-Captionqc-Signature).
    Column("webhook_secret", Text, nullable=False),
    # gs://bucket/prefix/ areas this tenant's media may come from; file:// media is always <media_root>/<tenant>/.
    Column("gs_prefixes", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("max_jobs_in_flight", Integer, nullable=False),
    Column("max_submissions_per_minute", Integer, nullable=False),
    Column("max_streams", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
