"""The hand-written migrations create exactly what tables.py declares, and go down and up again."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from captionqc.runtime.migrations import alembic_config, upgrade
from captionqc.status.migrate import MIGRATIONS, migrate
from captionqc.status.tables import SCHEMA, metadata


async def test_migration_matches_the_tables(engine: AsyncEngine) -> None:
    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return name == SCHEMA if type_ == "schema" else True

    def diff(conn: Any) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={"include_schemas": True, "include_name": include_name, "version_table_schema": SCHEMA},
        )
        return [d for d in compare_metadata(context, metadata) if not _is_version_table(d)]

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def _is_version_table(entry: Any) -> bool:
    return isinstance(entry, tuple) and entry[0] == "remove_table" and entry[1].name == "alembic_version"


async def test_inbox_and_timeline_rows_survive_the_move_to_source_and_id(fresh_database: Any) -> None:
    url = await fresh_database()
    await asyncio.to_thread(upgrade, MIGRATIONS, url, SCHEMA, "0002")
    engine = create_async_engine(url)
    timeline_row = (
        "INSERT INTO status.timeline (event_id, job_id, type, time, received_at, source, summary) "
        "VALUES ('e-1', 'j', 't', now(), now(), :source, 's')"
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO status.inbox (consumer, event_id) VALUES ('status', 'e-1')"))
            await conn.execute(text(timeline_row), {"source": "//a"})
        await asyncio.to_thread(migrate, url)
        async with engine.begin() as conn:
            rows = (await conn.execute(text("SELECT consumer, source, event_id FROM status.inbox"))).all()
            assert [tuple(r) for r in rows] == [("status", "", "e-1")]
            # The same id from another source: another event now, in the inbox and in the timeline.
            await conn.execute(
                text("INSERT INTO status.inbox (consumer, source, event_id) VALUES ('status', '//b', 'e-1')")
            )
            await conn.execute(text(timeline_row), {"source": "//b"})
        await asyncio.to_thread(command.downgrade, alembic_config(MIGRATIONS, url, SCHEMA), "0002")
        async with engine.connect() as conn:
            for table in ("inbox", "timeline"):
                assert (await conn.execute(text(f"SELECT count(*) FROM status.{table}"))).scalar() == 1
        await asyncio.to_thread(migrate, url)
    finally:
        await engine.dispose()
