"""Alembic, one schema per service: each service keeps its migrations in its package and its version table in
its own schema, so services migrate independently against one database (or one database each)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(script_location: Path, database_url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    # '%' must be doubled for configparser interpolation (passwords may contain it).
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["captionqc_schema"] = schema
    return config


def upgrade(script_location: Path, database_url: str, schema: str, revision: str = "head") -> None:
    """Bring ``schema`` up to ``revision``. Safe to run on every start and from several replicas at once
    (Alembic takes the version row in a transaction; a transaction-level advisory lock serialises runners)."""
    command.upgrade(alembic_config(script_location, database_url, schema), revision)


def run_env(target_metadata: MetaData) -> None:
    """Body of a service's ``migrations/env.py``: online migrations over asyncpg inside the service schema."""
    config = context.config
    schema: str = config.attributes.get("captionqc_schema") or target_metadata.schema or "public"
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not configured")

    def do_run(connection: Connection) -> None:
        # Serialise concurrent migrators (several replicas starting at once) on a per-schema advisory lock.
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"captionqc-migrate-{schema}"})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, version_table_schema=schema, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(run_async())
