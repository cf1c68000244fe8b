"""The tenant registry: who may use captionqc, with what webhook secret, media areas and quotas.

- `Tenant` is one registered tenant; `TenantDirectory` answers "is this tenant registered and enabled?" for every
  request and message, from a short-lived in-process cache (a disable takes effect within ``ttl_s``);
- `add_tenant`, `ensure_tenant`, `update_tenant`, `list_tenants`, `get_tenant` are the registry's only writes and
  reads (the ``captionqc tenants`` command, the local stack and the services use them);
- `migrate(database_url)` brings the ``tenants`` schema up to date (the gateway's migration runs it too).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from captionqc.runtime.migrations import upgrade
from captionqc.runtime.tenants.tables import SCHEMA, tenants

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# gs://bucket/ or gs://bucket/prefix/ — always ending in "/", so "gs://b/acme/" never matches "gs://b/acme-evil/x".
GS_PREFIX = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/([A-Za-z0-9._~!$&'()*+,;=:@-]+/)*$")

DEFAULT_MAX_JOBS_IN_FLIGHT = 20
DEFAULT_MAX_SUBMISSIONS_PER_MINUTE = 60
DEFAULT_MAX_STREAMS = 10


class TenantError(ValueError):
    """A registry write that breaks a rule (bad name, bad prefix, duplicate, unknown tenant)."""


@dataclass(frozen=True)
class Tenant:
    tenant: str
    enabled: bool = True
    webhook_secret: str = field(default="", repr=False)
    gs_prefixes: tuple[str, ...] = ()
    max_jobs_in_flight: int = DEFAULT_MAX_JOBS_IN_FLIGHT
    max_submissions_per_minute: int = DEFAULT_MAX_SUBMISSIONS_PER_MINUTE
    max_streams: int = DEFAULT_MAX_STREAMS

    def owns_gs_uri(self, uri: str) -> bool:
        return any(uri.startswith(prefix) for prefix in self.gs_prefixes)


def check_tenant_name(name: str) -> str:
    if not TENANT_NAME.match(name):
        raise TenantError(f"{name!r} is not a tenant name: lowercase letters, digits, '-' and '_', at most 63")
    return name


def check_gs_prefix(prefix: str) -> str:
    if not GS_PREFIX.match(prefix) or any(seg in {".", ".."} for seg in prefix[5:].split("/")):
        raise TenantError(f"{prefix!r} is not a gs:// area: write gs://bucket/ or gs://bucket/prefix/ (ending in '/')")
    return prefix


def _check_quota(name: str, value: int) -> int:
    if not 1 <= value <= 100_000:
        raise TenantError(f"{name} must be between 1 and 100000, not {value}")
    return value


def _from_row(row: Any) -> Tenant:
    return Tenant(
        tenant=row.tenant,
        enabled=row.enabled,
        webhook_secret=row.webhook_secret,
        gs_prefixes=tuple(row.gs_prefixes or ()),
        max_jobs_in_flight=row.max_jobs_in_flight,
        max_submissions_per_minute=row.max_submissions_per_minute,
        max_streams=row.max_streams,
    )


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


def _checked(tenant: Tenant) -> Tenant:
    check_tenant_name(tenant.tenant)
    for prefix in tenant.gs_prefixes:
        check_gs_prefix(prefix)
    for name in ("max_jobs_in_flight", "max_submissions_per_minute", "max_streams"):
        _check_quota(name, getattr(tenant, name))
    if not tenant.webhook_secret:
        tenant = replace(tenant, webhook_secret=new_webhook_secret())
    return tenant


def _row(tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant": tenant.tenant,
        "enabled": tenant.enabled,
        "webhook_secret": tenant.webhook_secret,
        "gs_prefixes": list(tenant.gs_prefixes),
        "max_jobs_in_flight": tenant.max_jobs_in_flight,
        "max_submissions_per_minute": tenant.max_submissions_per_minute,
        "max_streams": tenant.max_streams,
    }


async def add_tenant(session: AsyncSession | AsyncConnection, tenant: Tenant) -> Tenant:
    """Register ``tenant`` (a webhook secret is generated when it has none); `TenantError` if it exists."""
    tenant = _checked(tenant)
    if await get_tenant(session, tenant.tenant) is not None:
        raise TenantError(f"tenant {tenant.tenant!r} is already registered")
    await session.execute(insert(tenants).values(**_row(tenant)))
    return tenant


async def ensure_tenant(session: AsyncSession | AsyncConnection, tenant: Tenant) -> Tenant:
    """The registered tenant of that name, registering ``tenant`` first if nobody has (safe to race)."""
    tenant = _checked(tenant)
    await session.execute(pg_insert(tenants).values(**_row(tenant)).on_conflict_do_nothing(index_elements=["tenant"]))
    registered = await get_tenant(session, tenant.tenant)
    assert registered is not None
    return registered


async def update_tenant(session: AsyncSession | AsyncConnection, name: str, **changes: Any) -> Tenant:
    """Change some of a tenant's fields (``enabled``, ``webhook_secret``, ``gs_prefixes``, quotas)."""
    allowed = {"enabled", "webhook_secret", "gs_prefixes", "max_jobs_in_flight", "max_submissions_per_minute",
               "max_streams"}  # fmt: skip
    unknown = set(changes) - allowed
    if unknown:
        raise TenantError(f"unknown tenant field(s): {', '.join(sorted(unknown))}")
    if "gs_prefixes" in changes:
        changes["gs_prefixes"] = [check_gs_prefix(p) for p in changes["gs_prefixes"]]
    for name_ in ("max_jobs_in_flight", "max_submissions_per_minute", "max_streams"):
        if name_ in changes:
            _check_quota(name_, changes[name_])
    if "webhook_secret" in changes and not changes["webhook_secret"]:
        raise TenantError("webhook_secret must not be empty")
    result = await session.execute(
        update(tenants).where(tenants.c.tenant == name).values(**changes, updated_at=func.now()).returning(*tenants.c)
    )
    row = result.first()
    if row is None:
        raise TenantError(f"tenant {name!r} is not registered")
    return _from_row(row)


async def get_tenant(session: AsyncSession | AsyncConnection, name: str) -> Tenant | None:
    row = (await session.execute(select(tenants).where(tenants.c.tenant == name))).first()
    return _from_row(row) if row is not None else None


async def list_tenants(session: AsyncSession | AsyncConnection) -> list[Tenant]:
    rows = (await session.execute(select(tenants).order_by(tenants.c.tenant))).all()
    return [_from_row(r) for r in rows]


class TenantDirectory:
    """Registered tenants as the services see them: read through a cache that forgets after ``ttl_s``.

    A request or message for a tenant costs one indexed read per ``ttl_s`` per process, and a disable or quota
    change takes effect everywhere within ``ttl_s``.
    """

    def __init__(self, engine: AsyncEngine, *, ttl_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self._engine = engine
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, Tenant | None]] = {}
        self._lock = asyncio.Lock()

    async def get(self, name: str) -> Tenant | None:
        """The tenant, or None if nobody registered it."""
        now = self._clock()
        cached = self._cache.get(name)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        async with self._engine.connect() as conn:
            tenant = await get_tenant(conn, name)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[name] = (now, tenant)
        return tenant

    def forget(self, names: Sequence[str] = ()) -> None:
        """Drop cached entries (all when ``names`` is empty): for tests and after this process's own writes."""
        if not names:
            self._cache.clear()
        for name in names:
            self._cache.pop(name, None)


@asynccontextmanager
async def registry_transaction(database_url: str) -> AsyncIterator[AsyncConnection]:
    """One transaction on the registry's database, for tools (the CLI, the local stack) that own no engine."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


def migrate(database_url: str) -> None:
    """Bring the ``tenants`` schema up to date."""
    upgrade(MIGRATIONS, database_url, SCHEMA)


__all__ = [
    "DEFAULT_MAX_JOBS_IN_FLIGHT",
    "DEFAULT_MAX_STREAMS",
    "DEFAULT_MAX_SUBMISSIONS_PER_MINUTE",
    "SCHEMA",
    "Tenant",
    "TenantDirectory",
    "TenantError",
    "add_tenant",
    "check_gs_prefix",
    "check_tenant_name",
    "ensure_tenant",
    "get_tenant",
    "list_tenants",
    "migrate",
    "new_webhook_secret",
    "registry_transaction",
    "tenants",
    "update_tenant",
]
