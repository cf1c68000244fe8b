"""pytest fixtures for the real local platform (see the package docstring)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from captionqc.runtime.pg_local import LocalPostgres, start_local_postgres

REPO_ROOT = Path(__file__).resolve().parents[6]
VAR = Path(os.environ.get("CAPTIONQC_VAR_DIR", REPO_ROOT / "var"))


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """One embedded PostgreSQL for the run, in a throwaway data dir under var/ (git-ignored)."""
    base = VAR / "test-pg"
    base.mkdir(parents=True, exist_ok=True)
    data_dir = base / f"pg-{os.getpid()}"
    server = start_local_postgres(data_dir, delete_on_stop=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def fresh_database(pg_server: LocalPostgres) -> AsyncIterator[Callable[..., Any]]:
    """Factory for a new database per test: ``url = await fresh_database(migrate=callable_or_None)``."""
    created: list[str] = []

    async def make(migrate: Callable[[str], None] | None = None) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        await asyncio.to_thread(pg_server.psql, f'CREATE DATABASE "{name}";')
        created.append(name)
        url = pg_server.url(name)
        if migrate is not None:
            await asyncio.to_thread(migrate, url)
        return url

    yield make
    for name in created:
        await asyncio.to_thread(pg_server.psql, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[Any]:
    from captionqc.pubsub_emulator.testing import start_emulator

    with start_emulator() as emulator:
        yield emulator


@pytest.fixture
def pubsub_project(pubsub_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh project id with the captionqc topology applied on the session's emulator."""
    from captionqc.runtime.pubsub import apply_topology

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.host)
    project = f"test-{uuid.uuid4().hex[:12]}"
    apply_topology(project)
    return project
