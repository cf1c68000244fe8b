"""Who may call (the URL policy is in test_url_policy.py)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from captionqc.gateway.app import create_app
from captionqc.gateway.settings import GatewaySettings

from .conftest import SECRET, bearer, running
from .helpers import change_tenant

GS = {"media_uri": "gs://broadcast-media/news/0612.mp4"}
ISSUER = "https://idp.test/"
AUDIENCE = "captionqc-gateway"


@pytest.mark.parametrize(
    ("headers", "status", "www_authenticate"),
    [
        ({}, 401, 'Bearer realm="captionqc"'),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, 'Bearer realm="captionqc"'),
        ({"Authorization": "Bearer x.y.z"}, 401, 'error="invalid_token"'),
        (bearer(secret="another-secret-of-the-right-size-0123"), 401, 'error="invalid_token"'),
        (bearer(ttl_s=-3600), 401, "the token has expired"),
        (bearer(scopes=("jobs:read",)), 403, 'error="insufficient_scope", scope="jobs:write"'),
        (bearer(scopes=()), 403, 'error="insufficient_scope"'),
    ],
    ids=["no-token", "basic", "garbage", "bad-signature", "expired", "read-scope-only", "no-scope"],
)
async def test_unauthenticated_and_unauthorised_callers(
    client: httpx.AsyncClient, headers: dict[str, str], status: int, www_authenticate: str
) -> None:
    r = await client.post("/v1/jobs", json=GS, headers=headers)
    assert r.status_code == status
    assert www_authenticate in r.headers["www-authenticate"]
    assert r.json()["error"] == ("unauthorized" if status == 401 else "forbidden")


async def test_token_without_a_valid_tenant_is_401(client: httpx.AsyncClient) -> None:
    token = jwt.encode({"sub": "x", "scope": "jobs:write", "exp": 2**31, "tenant": "Not A Slug"}, SECRET)
    r = await client.post("/v1/jobs", json=GS, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert "tenant" in r.json()["message"]


# --------------------------------------------------------------------------------------------- JWKS (production)


class _Jwks:
    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        keys = []
        for kid, key, alg in (("rsa-1", self.rsa, "RS256"), ("ec-1", self.ec, "ES256")):
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        self.document = json.dumps({"keys": keys}).encode()

    def token(self, alg: str = "RS256", **claims: Any) -> str:
        exp = int(time.time()) + 3600
        base = {"sub": "svc-a", "tenant": "acme", "scope": "jobs:write", "exp": exp, "iss": ISSUER, "aud": AUDIENCE}
        key, kid = (self.rsa, "rsa-1") if alg == "RS256" else (self.ec, "ec-1")
        return jwt.encode({**base, **claims}, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, _Jwks]]:
    """A JWKS document served over real HTTP on 127.0.0.1, as an identity provider would."""
    keys = _Jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(keys.document)))
            self.end_headers()
            self.wfile.write(keys.document)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json", keys
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
async def jwks_client(
    make_settings: Callable[..., GatewaySettings], jwks_server: tuple[str, _Jwks]
) -> AsyncIterator[httpx.AsyncClient]:
    url, _ = jwks_server
    settings = make_settings(jwt_mode="jwks", jwks_url=url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    async with running(create_app(settings)) as c:
        yield c


async def test_jwks_mode_accepts_rs256_and_es256(jwks_client: httpx.AsyncClient, jwks_server: Any) -> None:
    _, keys = jwks_server
    for alg in ("RS256", "ES256"):
        r = await jwks_client.post("/v1/jobs", json=GS, headers={"Authorization": f"Bearer {keys.token(alg)}"})
        assert r.status_code == 202, r.text


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "someone-else"}, "wrong audience"),
        ({"iss": "https://evil.test/"}, "wrong issuer"),
        ({"exp": 1_000_000}, "expired"),
    ],
)
async def test_jwks_mode_refuses_wrong_audience_issuer_expiry(
    jwks_client: httpx.AsyncClient, jwks_server: Any, claims: dict[str, Any], reason: str
) -> None:
    _, keys = jwks_server
    r = await jwks_client.post("/v1/jobs", json=GS, headers={"Authorization": f"Bearer {keys.token(**claims)}"})
    assert r.status_code == 401
    assert reason in r.headers["www-authenticate"]


async def test_jwks_mode_refuses_a_locally_signed_token(jwks_client: httpx.AsyncClient) -> None:
    # An HS256 token must never pass where the provider's keys are expected (algorithm confusion).
    r = await jwks_client.post("/v1/jobs", json=GS, headers=bearer(issuer=ISSUER, audience=AUDIENCE))
    assert r.status_code == 401


def test_settings_refuse_unsafe_production_config(tmp_path: Path) -> None:
    jwks = {"jwt_mode": "jwks", "jwks_url": "https://idp/jwks", "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    with pytest.raises(ValidationError, match="jwt_mode=jwks"):
        GatewaySettings(environment="production", jwt_secret=SECRET)  # type: ignore[arg-type]
    GatewaySettings(environment="production", **jwks)  # type: ignore[arg-type]


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTIONQC_GATEWAY_JWT_SECRET", SECRET)
    monkeypatch.setenv("CAPTIONQC_GATEWAY_ALLOWED_HTTPS_HOSTS", "media.example.com, CDN.example.com")
    monkeypatch.setenv("CAPTIONQC_GATEWAY_MAX_BODY_BYTES", "8192")
    settings = GatewaySettings()
    assert settings.allowed_https_hosts == frozenset({"media.example.com", "cdn.example.com"})
    assert settings.max_body_bytes == 8192


def test_token_command_mints_a_verifiable_token(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from captionqc.gateway.token import main

    monkeypatch.setenv("CAPTIONQC_GATEWAY_JWT_SECRET", SECRET)
    assert main(["--tenant", "acme", "--scope", "jobs:write", "--scope", "jobs:read", "--ttl", "60"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), SECRET, algorithms=["HS256"])
    assert claims["tenant"] == "acme"
    assert claims["scope"] == "jobs:write jobs:read"
    assert claims["exp"] - claims["iat"] == 60


def test_token_command_refuses_a_lifetime_the_gateway_would_refuse(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from captionqc.gateway.token import main

    monkeypatch.setenv("CAPTIONQC_GATEWAY_JWT_SECRET", SECRET)
    assert main(["--tenant", "acme", "--scope", "jobs:write", "--ttl", str(100 * 365 * 86400)]) == 2
    assert "at most 86400 s" in capsys.readouterr().err
    monkeypatch.setenv("CAPTIONQC_GATEWAY_JWT_MAX_LIFETIME_S", "600")
    assert main(["--tenant", "acme", "--scope", "jobs:write", "--ttl", "601"]) == 2
    assert main(["--tenant", "acme", "--scope", "jobs:write", "--ttl", "600"]) == 0


# ------------------------------------------------------------------------------------- registry and lifetime


async def test_tokens_for_unknown_or_disabled_tenants_are_refused(client: httpx.AsyncClient, database_url: str) -> None:
    unknown = await client.post("/v1/jobs", json=GS, headers=bearer("mallory"))
    assert (unknown.status_code, unknown.json()["error"]) == (401, "unauthorized")
    assert unknown.json()["details"][0]["type"] == "unknown_tenant"
    assert "not registered" in unknown.json()["message"]

    await change_tenant(database_url, "acme", enabled=False)
    disabled = await client.post("/v1/jobs", json=GS, headers=bearer())
    assert (disabled.status_code, disabled.json()["error"]) == (403, "forbidden")
    assert disabled.json()["details"][0]["type"] == "tenant_disabled"

    await change_tenant(database_url, "acme", enabled=True)
    assert (await client.post("/v1/jobs", json=GS, headers=bearer())).status_code == 202


async def test_a_century_token_is_refused(client: httpx.AsyncClient) -> None:
    now = int(time.time())
    for claims in ({"iat": now, "exp": now + 100 * 365 * 86400}, {"exp": now + 100 * 365 * 86400}):
        token = jwt.encode({"sub": "x", "tenant": "acme", "scope": "jobs:write", **claims}, SECRET)
        r = await client.post("/v1/jobs", json=GS, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
        assert r.json()["details"][0]["type"] == "token_lifetime"
    assert (await client.post("/v1/jobs", json=GS, headers=bearer(ttl_s=86400))).status_code == 202


async def test_a_dead_identity_provider_is_401_not_500(make_settings: Callable[..., GatewaySettings]) -> None:
    settings = make_settings(
        jwt_mode="jwks", jwks_url="http://127.0.0.1:9/jwks", jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    )
    token = _Jwks().token()
    async with running(create_app(settings)) as c:
        r = await c.post("/v1/jobs", json=GS, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    await asyncio.sleep(0)
