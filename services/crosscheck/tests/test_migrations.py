"""The hand-written migrations create exactly what tables.py declares, and go down and up again."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from captionqc.crosscheck.migrate import MIGRATIONS, migrate
from captionqc.crosscheck.tables import SCHEMA, metadata
from captionqc.runtime.migrations import alembic_config, upgrade


def _diff(conn: Any) -> list[Any]:
    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return name == SCHEMA if type_ == "schema" else True

    context = MigrationContext.configure(
        conn, opts={"include_schemas": True, "include_name": include_name, "version_table_schema": SCHEMA}
    )
    return [
        d
        for d in compare_metadata(context, metadata)
        if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == "alembic_version")
    ]


async def test_migrations_match_the_tables(fresh_database: Any) -> None:
    url = await fresh_database(migrate)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_inbox_rows_claimed_by_id_alone_survive_the_move_to_source_and_id(fresh_database: Any) -> None:
    url = await fresh_database()
    await asyncio.to_thread(upgrade, MIGRATIONS, url, SCHEMA, "0001")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"INSERT INTO {SCHEMA}.inbox (consumer, event_id) VALUES ('crosscheck', 'e-1')"))
        await asyncio.to_thread(migrate, url)
        async with engine.begin() as conn:
            rows = (await conn.execute(text(f"SELECT consumer, source, event_id FROM {SCHEMA}.inbox"))).all()
            assert [tuple(r) for r in rows] == [("crosscheck", "", "e-1")]
            # The same id from two sources: two claims now.
            await conn.execute(
                text(f"INSERT INTO {SCHEMA}.inbox (consumer, source, event_id) VALUES ('crosscheck', '//a', 'e-1')")
            )
        config = alembic_config(MIGRATIONS, url, SCHEMA)
        await asyncio.to_thread(command.downgrade, config, "0001")
        async with engine.connect() as conn:
            assert (await conn.execute(text(f"SELECT count(*) FROM {SCHEMA}.inbox"))).scalar() == 1
        await asyncio.to_thread(migrate, url)
    finally:
        await engine.dispose()
