"""``python -m captionqc.gateway.migrate``: bring the gateway schema up to date (run before the server starts)."""

from __future__ import annotations

from pathlib import Path

from captionqc.gateway.settings import GatewaySettings
from captionqc.gateway.tables import SCHEMA
from captionqc.runtime.migrations import upgrade

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def migrate(database_url: str) -> None:
    upgrade(MIGRATIONS, database_url, SCHEMA)


def main() -> int:
    migrate(GatewaySettings().database_dsn())
    print(f"schema {SCHEMA!r} is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
