"""``python -m captionqc.crosscheck.migrate``: bring the crosscheck schema up to date."""

from __future__ import annotations

from pathlib import Path

from captionqc.crosscheck.settings import CrosscheckSettings
from captionqc.crosscheck.tables import SCHEMA
from captionqc.runtime.migrations import upgrade

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def migrate(database_url: str) -> None:
    upgrade(MIGRATIONS, database_url, SCHEMA)


def main() -> int:
    settings = CrosscheckSettings()
    migrate(settings.database_dsn())
    print(f"schema {SCHEMA!r} is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
