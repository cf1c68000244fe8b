"""The hand-written migration creates exactly what tables.py declares."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

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
