"""Gateway tests against the real local platform: embedded PostgreSQL (migrated with Alembic) and the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from captionqc.gateway.app import create_app
from captionqc.gateway.migrate import migrate
from captionqc.gateway.settings import GatewaySettings
from captionqc.runtime.http.auth import mint_local_token

from .helpers import register_tenants

SECRET = "gateway-test-secret-0123456789abcdef"
# Tenants the tests' tokens act for; every token is checked against the registry.
TENANTS = ("acme", "beeb", "other-co")
_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="session", autouse=True)
def _span_capture() -> None:
    """Record finished spans in memory, whichever SDK provider this process ended up with (OTel allows one)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
async def database_url(fresh_database: Any) -> str:
    url: str = await fresh_database(migrate)
    # Their gs:// media may come from the whole test bucket (test_url_policy narrows acme's area).
    await register_tenants(url, *TENANTS, gs_prefixes=("gs://broadcast-media/",))
    return url


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    (root / "clip.mp4").write_bytes(b"\x00" * 16)
    return root


@pytest.fixture
def make_settings(database_url: str, pubsub_project: str, media_root: Path) -> Callable[..., GatewaySettings]:
    def make(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "gcp_project": pubsub_project,
            "jwt_secret": SECRET,
            "media_root": media_root,
            "allowed_https_hosts": frozenset({"93.184.216.34", "10.1.2.3"}),
            "callback_allowed_hosts": frozenset({"93.184.216.34", "127.0.0.1"}),
            "relay_poll_interval_s": 0.1,
            "max_body_bytes": 4096,
            "tenant_cache_s": 0.0,
            **overrides,
        }
        return GatewaySettings(**values)

    return make


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client speaking to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client


@pytest.fixture
async def client(make_settings: Callable[..., GatewaySettings]) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(make_settings())) as c:
        yield c


def bearer(tenant: str = "acme", scopes: tuple[str, ...] = ("jobs:write",), **kw: Any) -> dict[str, str]:
    secret = kw.pop("secret", SECRET)
    return {"Authorization": f"Bearer {mint_local_token(secret, tenant=tenant, scopes=scopes, **kw)}"}
