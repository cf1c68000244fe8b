"""Bearer-JWT authentication as FastAPI dependencies.

- ``hs256`` (local, tests, ``make run``): tokens signed with a shared secret from settings; mint one with
  `mint_local_token` (the gateway's ``captionqc-token`` command wraps it).
- ``jwks`` (production): RS256/ES256 tokens verified against the identity provider's JWKS URL (keys cached by
  ``jwt.PyJWKClient``), with issuer and audience checked.

Claims: ``sub`` (the caller), a tenant claim (``tenant`` by default) and scopes (``scope``: space-separated, or a
``scp``/``scopes`` list). Missing or invalid token → 401 with ``WWW-Authenticate: Bearer …``; a valid token without
the route's scopes → 403.

Every token is also checked against the tenant registry (`captionqc.runtime.tenants`): a tenant nobody registered
→ 401 ``unknown_tenant``, a disabled one → 403 ``tenant_disabled``. A token meant to live longer than
``jwt_max_lifetime_s`` (``exp - iat``, or ``exp - now`` without ``iat``) → 401 ``token_lifetime``: a leaked
long-lived token is a standing key. Each refusal names its `Refusal` code in ``details[0].type``, and the same
`TokenVerifier` checks the tokens upstream publishers put in an intake message's ``authorization`` attribute.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from captionqc.runtime.http.errors import Forbidden, Unauthorized
from captionqc.runtime.tenants import Tenant, TenantDirectory
from captionqc.schemas.api import ErrorDetail
from captionqc.schemas.reasons import Refusal

_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_REALM = "captionqc"
LOCAL_ALGORITHMS = ("HS256",)
JWKS_ALGORITHMS = ("RS256", "ES256")
MIN_SECRET_BYTES = 32
DEFAULT_MAX_TOKEN_LIFETIME_S = 24 * 3600


class JwtMode(StrEnum):
    HS256 = "hs256"
    JWKS = "jwks"


class AuthSettings(BaseSettings):
    """Auth fields a service's settings class inherits (``class S(ServiceSettings, AuthSettings)``), so they are
    read with the service's own env prefix (e.g. ``CAPTIONQC_GATEWAY_JWT_SECRET``)."""

    jwt_mode: JwtMode = JwtMode.HS256
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 secret (jwt_mode=hs256).")
    jwks_url: str | None = Field(default=None, description="The identity provider's JWKS URL (jwt_mode=jwks).")
    jwt_issuer: str | None = Field(default=None, description="Required `iss`; mandatory in jwks mode.")
    jwt_audience: str | None = Field(default=None, description="Required `aud`; mandatory in jwks mode.")
    jwt_tenant_claim: str = "tenant"
    jwt_leeway_s: Annotated[int, Field(ge=0, le=300)] = 30
    jwks_cache_s: Annotated[int, Field(ge=0, le=86400)] = 300
    jwt_max_lifetime_s: Annotated[int, Field(ge=60, le=30 * 86400)] = Field(
        default=DEFAULT_MAX_TOKEN_LIFETIME_S,
        description="Longest lifetime a token may be issued with (exp - iat, or exp - now without iat).",
    )
    tenant_cache_s: Annotated[float, Field(ge=0, le=300)] = Field(
        default=5.0, description="How long a tenant registry lookup is cached; a disable takes effect within it."
    )

    @model_validator(mode="after")
    def _mode_is_complete(self) -> AuthSettings:
        if self.jwt_mode is JwtMode.HS256:
            if self.jwt_secret is None:
                raise ValueError("jwt_mode=hs256 needs jwt_secret")
            # RFC 7518 §3.2: an HS256 key must be at least as long as the hash (32 bytes).
            if len(self.jwt_secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
                raise ValueError(f"jwt_secret must be at least {MIN_SECRET_BYTES} bytes")
        if self.jwt_mode is JwtMode.JWKS and not (self.jwks_url and self.jwt_issuer and self.jwt_audience):
            raise ValueError("jwt_mode=jwks needs jwks_url, jwt_issuer and jwt_audience")
        # Production must verify against the identity provider: a shared secret on every replica is one leak
        # away from minting tokens for any tenant.
        environment = getattr(self, "environment", None)
        if environment is not None and str(environment) == "production" and self.jwt_mode is not JwtMode.JWKS:
            raise ValueError("production requires jwt_mode=jwks")
        return self


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every read and write is scoped to, the subject, and the granted scopes."""

    tenant: str
    subject: str
    scopes: frozenset[str]
    # The tenant's registry entry (quotas, media areas, webhook secret) as the verifier read it.
    registration: Tenant | None = field(default=None, compare=False)


def _auth_detail(reason: Refusal, description: str) -> list[ErrorDetail]:
    return [ErrorDetail(loc=["header", "authorization"], msg=description, type=reason.value)]


class TokenRejected(Unauthorized):
    """401: no token, or one this deployment does not accept; ``reason`` says why (also in ``details[0].type``)."""

    def __init__(self, description: str, reason: Refusal = Refusal.UNAUTHENTICATED, *, missing: bool = False):
        safe = description.replace('"', "'")
        # RFC 6750 §3.1: a request without credentials gets no error code, only the challenge.
        challenge = f'Bearer realm="{_REALM}"'
        if not missing:
            challenge += f', error="invalid_token", error_description="{safe}"'
        super().__init__(
            description if missing else f"Invalid bearer token: {description}.", www_authenticate=challenge
        )
        self.reason = reason
        self.details = _auth_detail(reason, description)


class TenantDisabled(Forbidden):
    """403: a valid token for a tenant an operator disabled."""

    reason = Refusal.TENANT_DISABLED

    def __init__(self, tenant: str) -> None:
        description = f"tenant {tenant!r} is disabled"
        super().__init__(f"The {description}.", details=_auth_detail(self.reason, description))


class ScopeMissing(Forbidden):
    """403: a valid token without the scope(s) the operation needs."""

    reason = Refusal.INSUFFICIENT_SCOPE

    def __init__(self, needed: frozenset[str], missing: frozenset[str]) -> None:
        wanted = " ".join(sorted(needed))
        description = f"the token lacks the scope(s): {', '.join(sorted(missing))}"
        super().__init__(
            f"The token lacks the scope(s): {', '.join(sorted(missing))}.",
            details=_auth_detail(self.reason, description),
            headers={"WWW-Authenticate": f'Bearer realm="{_REALM}", error="insufficient_scope", scope="{wanted}"'},
        )


# Everything authentication refuses: each carries a `Refusal` as ``reason`` (the intake door dead-letters with it).
AUTH_REFUSALS = (TokenRejected, TenantDisabled, ScopeMissing)
AuthRefusal = TokenRejected | TenantDisabled | ScopeMissing


def _invalid(description: str, reason: Refusal = Refusal.UNAUTHENTICATED) -> TokenRejected:
    return TokenRejected(description, reason)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization``-style value ``Bearer <jwt>``; `TokenRejected` if there is none."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejected("A bearer token is required.", missing=True)
    return token.strip()


def check_scopes(principal: Principal, scopes: Iterable[str]) -> Principal:
    """``principal`` if it holds every one of ``scopes``, else `ScopeMissing` (403)."""
    needed = frozenset(scopes)
    missing = needed - principal.scopes
    if missing:
        raise ScopeMissing(needed, missing)
    return principal


class TokenVerifier:
    """Verifies a bearer token and turns its claims into a `Principal`; built once per app from settings.

    Beyond the signature and the claims, the token's lifetime must be within ``jwt_max_lifetime_s`` and its tenant
    registered and enabled in ``tenants`` (a cached `TenantDirectory`).
    """

    def __init__(self, settings: AuthSettings, *, tenants: TenantDirectory) -> None:
        self._settings = settings
        self.tenants = tenants
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwt_mode is JwtMode.JWKS:
            assert settings.jwks_url is not None
            self._jwks = jwt.PyJWKClient(
                settings.jwks_url, cache_keys=True, lifespan=max(settings.jwks_cache_s, 1), timeout=5
            )

    async def verify(self, token: str) -> Principal:
        settings = self._settings
        try:
            if self._jwks is not None:
                # PyJWKClient fetches over blocking urllib (only on a cache miss): keep it off the event loop.
                signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                key: Any = signing_key.key
                algorithms: Sequence[str] = JWKS_ALGORITHMS
            else:
                assert settings.jwt_secret is not None
                key = settings.jwt_secret.get_secret_value()
                algorithms = LOCAL_ALGORITHMS
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(algorithms),
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                leeway=settings.jwt_leeway_s,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise _invalid("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise _invalid("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise _invalid("wrong issuer") from None
        except jwt.PyJWKClientConnectionError:
            # The identity provider is unreachable: the caller cannot fix that, but it is not their token's
            # fault either; 401 keeps clients from caching a 5xx as "service down".
            raise _invalid("signing keys are unavailable") from None
        except jwt.PyJWTError:
            raise _invalid("the token could not be verified") from None
        tenant = claims.get(settings.jwt_tenant_claim)
        if not isinstance(tenant, str) or not _TENANT.match(tenant):
            raise _invalid("the token carries no valid tenant")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _invalid("the token carries no subject")
        self._check_lifetime(claims)
        registration = await self.tenants.get(tenant)
        if registration is None:
            raise _invalid(f"tenant {tenant!r} is not registered", Refusal.UNKNOWN_TENANT)
        if not registration.enabled:
            raise TenantDisabled(tenant)
        return Principal(tenant=tenant, subject=subject, scopes=frozenset(_scopes(claims)), registration=registration)

    async def authenticate(self, authorization: str | None, scopes: Iterable[str]) -> Principal:
        """Verify ``Bearer <jwt>`` and require ``scopes``: what a route does, for callers outside HTTP (intake)."""
        return check_scopes(await self.verify(bearer_token(authorization)), scopes)

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        # jwt.decode has already checked that exp (and iat, when present) are numbers.
        exp = float(claims["exp"])
        iat = claims.get("iat")
        issued = float(iat) if isinstance(iat, int | float) else time.time()
        limit = self._settings.jwt_max_lifetime_s
        if exp - issued > limit:
            raise _invalid(f"the token lives longer than the {limit} s allowed", Refusal.TOKEN_LIFETIME)


def _scopes(claims: dict[str, Any]) -> Iterable[str]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        yield from scope.split()
    for name in ("scp", "scopes"):
        value = claims.get(name)
        if isinstance(value, str):
            yield from value.split()
        elif isinstance(value, list):
            yield from (s for s in value if isinstance(s, str))


_VERIFIER_STATE = "captionqc_token_verifier"
bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT", description="A JWT with `tenant` and `scope` claims.")


def install_auth(app: FastAPI, settings: AuthSettings, *, tenants: TenantDirectory) -> TokenVerifier:
    """Build the verifier and attach it to ``app``; done in the lifespan, once the registry's engine is open."""
    verifier = TokenVerifier(settings, tenants=tenants)
    setattr(app.state, _VERIFIER_STATE, verifier)
    return verifier


def uninstall_auth(app: FastAPI) -> None:
    """Detach the verifier (lifespan shutdown): requests after that fail instead of using a closed engine."""
    setattr(app.state, _VERIFIER_STATE, None)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The authenticated caller; 401 if there is no valid bearer token."""
    if credentials is None or not credentials.credentials:
        raise TokenRejected("A bearer token is required.", missing=True)
    verifier: TokenVerifier | None = getattr(request.app.state, _VERIFIER_STATE, None)
    if verifier is None:
        raise RuntimeError("install_auth(app, settings, tenants=...) was not called")
    return await verifier.verify(credentials.credentials)


def require_scopes(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, who must hold every one of ``scopes`` (else 403)."""
    needed = frozenset(scopes)

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        return check_scopes(principal, needed)

    return dependency


def mint_local_token(
    secret: str,
    *,
    tenant: str,
    scopes: Sequence[str],
    ttl_s: int = 3600,
    subject: str | None = None,
    issuer: str | None = None,
    audience: str | None = None,
    tenant_claim: str = "tenant",
    max_lifetime_s: int = DEFAULT_MAX_TOKEN_LIFETIME_S,
) -> str:
    """An HS256 token for local use and tests (never for production, which runs in jwks mode).

    `ValueError` for a ``ttl_s`` over ``max_lifetime_s``: the services would refuse such a token anyway.
    """
    if ttl_s > max_lifetime_s:
        raise ValueError(f"a token may live at most {max_lifetime_s} s (asked for {ttl_s} s)")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject or f"local:{tenant}",
        tenant_claim: tenant,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")


__all__ = [
    "AUTH_REFUSALS",
    "DEFAULT_MAX_TOKEN_LIFETIME_S",
    "AuthRefusal",
    "AuthSettings",
    "JwtMode",
    "Principal",
    "ScopeMissing",
    "TenantDisabled",
    "TokenRejected",
    "TokenVerifier",
    "bearer_scheme",
    "bearer_token",
    "check_scopes",
    "current_principal",
    "install_auth",
    "mint_local_token",
    "require_scopes",
    "uninstall_auth",
]
