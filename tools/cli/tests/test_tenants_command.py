"""``captionqc tenants …`` and ``captionqc token`` against a real (embedded) PostgreSQL; the local stack's token()."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from typer.testing import CliRunner

from captionqc.cli.main import app
from captionqc.gateway.migrate import migrate
from captionqc.runtime.tenants import get_tenant, registry_transaction

SECRET_LINE = "webhook secret (store it now; it is not shown again): "


@pytest.fixture
def url(fresh_database: Any) -> str:
    database: str = asyncio.run(fresh_database(migrate))
    return database


def run(url: str | None, *args: str) -> Any:
    env = {"CAPTIONQC_GATEWAY_DATABASE_URL": url} if url else {}
    return CliRunner().invoke(app, ["tenants", *args], env=env)


def stored(url: str, name: str) -> Any:
    async def read() -> Any:
        async with registry_transaction(url) as conn:
            return await get_tenant(conn, name)

    return asyncio.run(read())


def test_add_shows_a_generated_secret_once_and_list_never(url: str) -> None:
    added = run(url, "add", "acme", "--gs-prefix", "gs://broadcast/acme/", "--max-jobs-in-flight", "3")
    assert added.exit_code == 0, added.output
    secret = next(line for line in added.output.splitlines() if line.startswith(SECRET_LINE))[len(SECRET_LINE) :]
    tenant = stored(url, "acme")
    assert tenant.webhook_secret == secret
    assert (tenant.gs_prefixes, tenant.max_jobs_in_flight, tenant.max_submissions_per_minute) == (
        ("gs://broadcast/acme/",),
        3,
        60,
    )
    given = run(url, "add", "beta", "--webhook-secret", "a-secret-the-operator-chose")
    assert given.exit_code == 0
    assert "a-secret-the-operator-chose" not in given.output

    for listing in (run(url, "list"), run(url, "list", "--json")):
        assert listing.exit_code == 0
        assert "acme" in listing.output
        assert "beta" in listing.output
        assert secret not in listing.output
        assert "a-secret-the-operator-chose" not in listing.output
    rows = [json.loads(line) for line in run(url, "list", "--json").output.splitlines()]
    assert rows[0] == {
        "tenant": "acme",
        "enabled": True,
        "gs_prefixes": ["gs://broadcast/acme/"],
        "max_jobs_in_flight": 3,
        "max_submissions_per_minute": 60,
        "max_streams": 10,
    }


def test_disable_enable_and_set(url: str) -> None:
    assert run(url, "add", "acme").exit_code == 0
    old_secret = stored(url, "acme").webhook_secret
    assert run(url, "disable", "acme").exit_code == 0
    assert stored(url, "acme").enabled is False
    assert run(url, "enable", "acme").exit_code == 0
    assert stored(url, "acme").enabled is True

    changed = run(url, "set", "acme", "--max-submissions-per-minute", "5", "--gs-prefix", "gs://bkt/x/")
    assert changed.exit_code == 0, changed.output
    assert (stored(url, "acme").max_submissions_per_minute, stored(url, "acme").gs_prefixes) == (5, ("gs://bkt/x/",))
    assert run(url, "set", "acme", "--no-gs-prefixes").exit_code == 0
    assert stored(url, "acme").gs_prefixes == ()

    rotated = run(url, "set", "acme", "--rotate-webhook-secret")
    new_secret = stored(url, "acme").webhook_secret
    assert new_secret != old_secret
    assert f"{SECRET_LINE}{new_secret}" in rotated.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "Not A Name"), "is not a tenant name"),
        (("add", "acme", "--gs-prefix", "gs://bucket"), "is not a gs:// area"),
        (("add", "acme", "--max-streams", "0"), "max_streams must be between 1 and 100000"),
        (("disable", "nobody"), "tenant 'nobody' is not registered"),
        (("set", "nobody", "--max-streams", "2"), "tenant 'nobody' is not registered"),
        (("set", "acme"), "nothing to change"),
        (("set", "acme", "--gs-prefix", "gs://bkt/", "--no-gs-prefixes"), "contradict"),
    ],
)
def test_bad_input_is_refused_clearly(url: str, args: tuple[str, ...], message: str) -> None:
    result = run(url, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_without_a_database_url_the_command_says_what_to_set() -> None:
    result = run(None, "list")
    assert result.exit_code == 2
    assert "CAPTIONQC_GATEWAY_DATABASE_URL" in result.output


def test_token_refuses_a_lifetime_the_services_would_refuse(tmp_path: Path) -> None:
    secret = "s" * 40
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "local-jwt-secret").write_text(secret)
    env = {"CAPTIONQC_VAR_DIR": str(tmp_path)}
    too_long = CliRunner().invoke(app, ["token", "--tenant", "acme", "--ttl", str(365 * 86400)], env=env)
    assert too_long.exit_code == 2
    assert "at most 86400 s" in too_long.output
    ok = CliRunner().invoke(app, ["token", "--tenant", "acme", "--ttl", "600"], env=env)
    claims = jwt.decode(ok.output.strip(), secret, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 600


def test_the_local_stack_registers_the_tenant_of_each_token(pg_server: Any, tmp_path: Path) -> None:
    from captionqc.devstack.logview import LogPrinter
    from captionqc.devstack.stack import DATABASE, Ports, Stack, StackPaths

    pg_server.psql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE);')
    pg_server.psql(f'CREATE DATABASE "{DATABASE}";')
    try:
        url = pg_server.url(DATABASE)
        migrate(url)
        stack = Stack(StackPaths(tmp_path), Ports(), LogPrinter(), "s" * 40, tmp_path / "spans.jsonl", pg=pg_server)
        for _ in range(2):  # the second token finds the tenant registered
            token = stack.token(tenant="e2e")
            assert jwt.decode(token, "s" * 40, algorithms=["HS256"])["tenant"] == "e2e"
        assert stored(url, "e2e").enabled is True
    finally:
        pg_server.psql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE);')
