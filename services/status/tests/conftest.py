from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from captionqc.runtime import tenants
from captionqc.runtime.db import session_factory
from captionqc.runtime.tenants import Tenant, add_tenant
from captionqc.status.migrate import migrate
from captionqc.status.service import StatusService

from .helpers import make_settings

# Registered in the tenant registry of every test database: tokens for other tenants get 401.
TENANTS = ("acme", "beta")


def _migrate_with_registry(url: str) -> None:
    # The tenant registry is migrated by the gateway in a deployment; status reads it to check every token.
    tenants.migrate(url)
    migrate(url)


@pytest.fixture
async def db_url(fresh_database: Any) -> str:
    url: str = await fresh_database(_migrate_with_registry)
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        for name in TENANTS:
            await add_tenant(conn, Tenant(tenant=name))
    await engine.dispose()
    return url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def service(engine: AsyncEngine) -> StatusService:
    return StatusService(session_factory(engine))


@pytest.fixture
async def status_app(db_url: str, pubsub_project: str, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """The app with its lifespan running (consumer on the emulator, sweeper, webhook sender)."""
    from fastapi import FastAPI

    from captionqc.status.app import create_app

    overrides = getattr(request, "param", {})
    app: FastAPI = create_app(make_settings(db_url, pubsub_project, **overrides))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(status_app: Any) -> AsyncIterator[Any]:
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=status_app), base_url="http://status") as c:
        yield c


@pytest.fixture
def app_service(status_app: Any) -> StatusService:
    service: StatusService = status_app.state.status.service
    return service
