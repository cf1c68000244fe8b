"""The tenant registry's writes on a real (embedded) PostgreSQL migrated with Alembic."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from captionqc.runtime import tenants
from captionqc.runtime.tenants import (
    Tenant,
    TenantError,
    add_tenant,
    ensure_tenant,
    get_tenant,
    list_tenants,
    registry_transaction,
)


@pytest.fixture
async def url(fresh_database: Any) -> str:
    database: str = await fresh_database(tenants.migrate)
    return database


async def test_ensure_tenant_registers_once_even_when_raced(url: str) -> None:
    async def ensure() -> Tenant:
        async with registry_transaction(url) as conn:
            return await ensure_tenant(conn, Tenant(tenant="demo"))

    first, second = await asyncio.gather(ensure(), ensure())
    async with registry_transaction(url) as conn:
        assert [t.tenant for t in await list_tenants(conn)] == ["demo"]
        stored = await get_tenant(conn, "demo")
    # Whichever insert won, both callers see the one registered secret.
    assert stored is not None
    assert first.webhook_secret == second.webhook_secret == stored.webhook_secret != ""


@pytest.mark.parametrize(
    ("tenant", "message"),
    [
        (Tenant(tenant="Not A Name"), "is not a tenant name"),
        (Tenant(tenant="acme", gs_prefixes=("gs://bucket/no-slash",)), "is not a gs:// area"),
        (Tenant(tenant="acme", gs_prefixes=("gs://bucket/../other/",)), "is not a gs:// area"),
        (Tenant(tenant="acme", max_jobs_in_flight=0), "max_jobs_in_flight must be between 1 and 100000"),
    ],
)
async def test_registry_writes_refuse_bad_input(url: str, tenant: Tenant, message: str) -> None:
    async with registry_transaction(url) as conn:
        with pytest.raises(TenantError, match=message):
            await ensure_tenant(conn, tenant)
        with pytest.raises(TenantError, match=message):
            await add_tenant(conn, tenant)


async def test_adding_a_registered_tenant_is_refused(url: str) -> None:
    async with registry_transaction(url) as conn:
        await add_tenant(conn, Tenant(tenant="acme"))
        with pytest.raises(TenantError, match="already registered"):
            await add_tenant(conn, Tenant(tenant="acme"))
