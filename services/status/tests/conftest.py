from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from captionqc.runtime.db import session_factory
from captionqc.status.migrate import migrate
from captionqc.status.service import StatusService


@pytest.fixture
async def db_url(fresh_database: Any) -> str:
    url: str = await fresh_database(migrate)
    return url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def service(engine: AsyncEngine) -> StatusService:
    return StatusService(session_factory(engine))
