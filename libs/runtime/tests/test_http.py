"""The shared HTTP pieces on a small real FastAPI app: error shape, request ids, body limit, auth, health."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from captionqc.runtime import tenants
from captionqc.runtime.http.auth import AuthSettings, Principal, install_auth, mint_local_token, require_scopes
from captionqc.runtime.http.errors import Conflict, install_error_handlers
from captionqc.runtime.http.health import health_router
from captionqc.runtime.http.middleware import install_middleware
from captionqc.runtime.tenants import Tenant, TenantDirectory, add_tenant, update_tenant

SECRET = "s" * 40


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def make_app(directory: TenantDirectory, *, ready: bool = True, **auth_settings: Any) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_middleware(app, max_body_bytes=100)
    install_auth(app, AuthSettings(jwt_secret=SECRET, **auth_settings), tenants=directory)

    async def check(request: Request) -> bool:
        return ready

    app.include_router(health_router({"db": check}))

    @app.post("/items/{item_id}")
    async def create(
        item_id: int, item: Item, principal: Annotated[Principal, Depends(require_scopes("items:write"))]
    ) -> dict[str, str]:
        if item.name == "dup":
            raise Conflict("already there")
        if item.name == "boom":
            raise RuntimeError("database password is hunter2")
        return {"tenant": principal.tenant, "name": item.name}

    return app


@pytest.fixture
async def engine(fresh_database: Any) -> AsyncIterator[AsyncEngine]:
    """A database with the tenant registry, where ``acme`` is registered."""
    eng = create_async_engine(await fresh_database(tenants.migrate))
    async with eng.begin() as conn:
        await add_tenant(conn, Tenant(tenant="acme"))
    yield eng
    await eng.dispose()


@pytest.fixture
def directory(engine: AsyncEngine) -> TenantDirectory:
    return TenantDirectory(engine, ttl_s=0)


@pytest.fixture
async def client(directory: TenantDirectory) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(directory))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def auth(*scopes: str, secret: str = SECRET, ttl: int = 60, tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(secret, tenant=tenant, scopes=scopes, ttl_s=ttl)}"}


def signed(**claims: Any) -> dict[str, str]:
    base = {"sub": "svc", "tenant": "acme", "scope": "items:write"}
    return {"Authorization": f"Bearer {jwt.encode({**base, **claims}, SECRET, algorithm='HS256')}"}


async def test_ok_with_scope_and_request_id_echoed(client: httpx.AsyncClient) -> None:
    r = await client.post("/items/1", json={"name": "a"}, headers={**auth("items:write"), "X-Request-ID": "abc-1"})
    assert r.status_code == 200
    assert r.json() == {"tenant": "acme", "name": "a"}
    assert r.headers["x-request-id"] == "abc-1"


async def test_request_id_is_sanitised_and_bounded(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": 'a b"<x>' + "z" * 500})
    assert r.headers["x-request-id"] == "abx" + "z" * 125
    r = await client.get("/healthz")
    assert len(r.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer not-a-jwt"}, 401, "unauthorized"),
        (auth("items:write", secret="x" * 40), 401, "unauthorized"),
        (auth("items:write", ttl=-120), 401, "unauthorized"),
        (auth("items:read"), 403, "forbidden"),
    ],
)
async def test_auth_failures(client: httpx.AsyncClient, headers: dict[str, str], status: int, error: str) -> None:
    r = await client.post("/items/1", json={"name": "a"}, headers=headers)
    assert r.status_code == status
    body = r.json()
    assert body["error"] == error
    assert body["request_id"] == r.headers["x-request-id"]
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_every_error_has_one_shape(client: httpx.AsyncClient) -> None:
    h = auth("items:write")
    cases = [
        (await client.post("/items/1", json={"name": "a", "extra": 1}, headers=h), 422, "validation_error"),
        (await client.post("/items/x", json={"name": "a"}, headers=h), 422, "validation_error"),
        (await client.post("/items/1", json={"name": "dup"}, headers=h), 409, "conflict"),
        (await client.get("/nowhere"), 404, "not_found"),
        (await client.get("/items/1"), 405, "method_not_allowed"),
        (await client.post("/items/1", json={"name": "boom"}, headers=h), 500, "internal_error"),
    ]
    for response, status, error in cases:
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"error", "message", "request_id", "details"}
        assert body["error"] == error
    assert "hunter2" not in cases[-1][0].text
    assert cases[0][0].json()["details"][0]["loc"] == ["body", "extra"]


async def test_body_limit_by_length_and_while_streaming(client: httpx.AsyncClient) -> None:
    h = auth("items:write")
    r = await client.post("/items/1", content=b'{"name": "' + b"x" * 200 + b'"}', headers=h)
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit must hold while the body streams in.
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 10
        yield b'"}'

    r = await client.post("/items/1", content=chunks(), headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["request_id"] == r.headers["x-request-id"]


async def test_readyz_reports_failing_checks(directory: TenantDirectory) -> None:
    transport = httpx.ASGITransport(app=make_app(directory, ready=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "not_ready", "checks": {"db": False}}


def test_settings_refuse_weak_or_incomplete_config() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at least 32 bytes"):
        AuthSettings(jwt_secret="short")
    with pytest.raises(ValidationError, match="jwks_url"):
        AuthSettings(jwt_mode="jwks")  # type: ignore[arg-type]
    assert jwt.decode(auth("a")["Authorization"][7:], SECRET, algorithms=["HS256"])["scope"] == "a"


async def test_a_token_must_name_a_registered_enabled_tenant(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    nobody = await client.post("/items/1", json={"name": "a"}, headers=auth("items:write", tenant="nobody"))
    assert nobody.status_code == 401
    assert nobody.json()["details"][0]["type"] == "unknown_tenant"
    assert 'error="invalid_token"' in nobody.headers["www-authenticate"]

    async with engine.begin() as conn:
        await update_tenant(conn, "acme", enabled=False)
    disabled = await client.post("/items/1", json={"name": "a"}, headers=auth("items:write"))
    assert disabled.status_code == 403
    assert (disabled.json()["error"], disabled.json()["details"][0]["type"]) == ("forbidden", "tenant_disabled")

    async with engine.begin() as conn:
        await update_tenant(conn, "acme", enabled=True)
    assert (await client.post("/items/1", json={"name": "a"}, headers=auth("items:write"))).status_code == 200


async def test_a_disable_takes_effect_within_the_cache_lifetime(engine: AsyncEngine) -> None:
    now = [0.0]
    directory = TenantDirectory(engine, ttl_s=5, clock=lambda: now[0])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(directory)), base_url="http://t") as c:
        assert (await c.post("/items/1", json={"name": "a"}, headers=auth("items:write"))).status_code == 200
        async with engine.begin() as conn:
            await update_tenant(conn, "acme", enabled=False)
        now[0] = 4.9  # still the cached answer: no query per request
        assert (await c.post("/items/1", json={"name": "a"}, headers=auth("items:write"))).status_code == 200
        now[0] = 5.0
        assert (await c.post("/items/1", json={"name": "a"}, headers=auth("items:write"))).status_code == 403


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"iat": 0, "exp": 86400}, 401),  # expired long ago, and would be refused for its age anyway
        ({"iat": int(time.time()), "exp": int(time.time()) + 86400}, 200),  # exactly the maximum
        ({"iat": int(time.time()), "exp": int(time.time()) + 86401}, 401),
        ({"iat": int(time.time()) - 100 * 86400, "exp": int(time.time()) + 60}, 401),  # minted for 100 days
        ({"exp": int(time.time()) + 100 * 365 * 86400}, 401),  # no iat: a century from now
        ({"exp": int(time.time()) + 3600}, 200),  # no iat, an hour from now
    ],
    ids=["expired", "24h", "24h+1s", "100-days-old", "century-no-iat", "hour-no-iat"],
)
async def test_token_lifetime_is_capped(client: httpx.AsyncClient, claims: dict[str, Any], status: int) -> None:
    r = await client.post("/items/1", json={"name": "a"}, headers=signed(**claims))
    assert r.status_code == status, r.text
    if status == 401 and claims.get("exp", 0) > time.time():
        assert r.json()["details"][0]["type"] == "token_lifetime"


async def test_the_maximum_lifetime_is_a_setting(directory: TenantDirectory) -> None:
    app = make_app(directory, jwt_max_lifetime_s=600)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.post("/items/1", json={"name": "a"}, headers=auth("items:write", ttl=600))).status_code == 200
        r = await c.post("/items/1", json={"name": "a"}, headers=auth("items:write", ttl=601))
    assert (r.status_code, r.json()["details"][0]["type"]) == (401, "token_lifetime")


def test_local_tokens_are_not_minted_beyond_the_maximum() -> None:
    with pytest.raises(ValueError, match="at most 86400 s"):
        mint_local_token(SECRET, tenant="acme", scopes=["a"], ttl_s=86401)
    with pytest.raises(ValueError, match="at most 60 s"):
        mint_local_token(SECRET, tenant="acme", scopes=["a"], ttl_s=61, max_lifetime_s=60)
