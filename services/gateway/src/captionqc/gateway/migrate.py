"""``python -m captionqc.gateway.migrate``: bring the gateway schema and the tenant registry's up to date (run before
the server starts)."""

from __future__ import annotations

from pathlib import Path

from captionqc.gateway.settings import GatewaySettings
from captionqc.gateway.tables import SCHEMA
from captionqc.runtime import tenants
from captionqc.runtime.migrations import upgrade

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def migrate(database_url: str) -> None:
    # The gateway writes the registry (`captionqc tenants`) and checks every token against it.
    tenants.migrate(database_url)
    upgrade(MIGRATIONS, database_url, SCHEMA)


def main() -> int:
    migrate(GatewaySettings().database_dsn())
    print(f"schemas {tenants.SCHEMA!r} and {SCHEMA!r} are up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
