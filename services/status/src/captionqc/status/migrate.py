"""``python -m captionqc.status.migrate``: bring the status schema up to date."""

from __future__ import annotations

from pathlib import Path

from captionqc.runtime.migrations import upgrade
from captionqc.status.settings import StatusSettings
from captionqc.status.tables import SCHEMA

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def migrate(database_url: str) -> None:
    upgrade(MIGRATIONS, database_url, SCHEMA)


def main() -> int:
    settings = StatusSettings()
    migrate(settings.database_dsn())
    print(f"schema {SCHEMA!r} is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
