"""``captionqc-token --tenant acme --scope jobs:write``: print a local HS256 token for `make run` users.

The secret comes from ``CAPTIONQC_GATEWAY_JWT_SECRET`` (the gateway's settings); production uses the identity
provider's tokens instead (jwks mode), so this refuses to mint there. It also refuses a ``--ttl`` beyond the
gateway's ``jwt_max_lifetime_s``, which the services would refuse anyway. The tenant must be registered
(``captionqc tenants add``) for the token to be accepted.
"""

from __future__ import annotations

import argparse
import sys

from captionqc.gateway.settings import GatewaySettings
from captionqc.runtime.http.auth import JwtMode, mint_local_token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="captionqc-token", description="Mint a local HS256 token for the gateway.")
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--scope", action="append", required=True, help="repeatable: --scope jobs:write")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600; at most JWT_MAX_LIFETIME_S)")
    parser.add_argument("--subject", default=None)
    args = parser.parse_args(argv)
    settings = GatewaySettings()
    if settings.jwt_mode is not JwtMode.HS256 or settings.jwt_secret is None:
        print("captionqc-token mints local HS256 tokens only (jwt_mode is not hs256)", file=sys.stderr)
        return 2
    if args.ttl <= 0:
        print("captionqc-token: --ttl must be a positive number of seconds", file=sys.stderr)
        return 2
    try:
        token = mint_local_token(
            settings.jwt_secret.get_secret_value(),
            tenant=args.tenant,
            scopes=args.scope,
            ttl_s=args.ttl,
            subject=args.subject,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            tenant_claim=settings.jwt_tenant_claim,
            max_lifetime_s=settings.jwt_max_lifetime_s,
        )
    except ValueError as exc:
        print(f"captionqc-token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
