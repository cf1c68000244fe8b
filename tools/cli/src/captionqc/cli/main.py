"""``captionqc``: submit media, watch jobs and read findings over the public API; run the local stack.

captionqc stack run                    start everything locally and keep serving (Ctrl-C stops)
captionqc stack demo                   start everything, check a bundled sample clip, print the findings
captionqc submit FILE|URI [--wait]     submit a job (a local file is handed over in the tenant's media folder)
captionqc watch JOB                    live progress bars until the job ends
captionqc findings JOB --format table|json|csv|vtt
captionqc token --tenant acme --scope jobs:write --scope jobs:read [--ttl 3600]
captionqc tenants add|list|enable|disable|set    the tenant registry (CAPTIONQC_GATEWAY_DATABASE_URL)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from captionqc.cli.client import ApiError, CaptionqcClient, pretty_json
from captionqc.cli.display import findings_table, watch_stream
from captionqc.schemas import JobOptions
from captionqc.schemas.api import JobCreate
from captionqc.schemas.status_api import JobState, JobView

app = typer.Typer(
    help="captionqc: submit media, watch jobs, read findings; run the local stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(help="The local stack (embedded PostgreSQL, Pub/Sub emulator, five services).")
app.add_typer(stack_app, name="stack")
# Piped output (CI logs, `| less`) gets a wide fixed width instead of 80 columns, so the table stays readable.
console = Console() if sys.stdout.isatty() else Console(width=150)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=150)

REPO_ROOT = Path(__file__).resolve().parents[5]
T = TypeVar("T")
DEFAULT_CLIP = REPO_ROOT / "samples" / "news_council.mp4"


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    VTT = "vtt"


GatewayOpt = Annotated[str, typer.Option(envvar="CAPTIONQC_GATEWAY_URL", help="Gateway base URL.")]
StatusOpt = Annotated[str, typer.Option(envvar="CAPTIONQC_STATUS_URL", help="Status service base URL.")]
TokenOpt = Annotated[
    str | None, typer.Option(envvar="CAPTIONQC_TOKEN", help="Bearer token (default: a local token for `make run`).")
]


def _var_dir() -> Path:
    return Path(os.environ.get("CAPTIONQC_VAR_DIR", REPO_ROOT / "var"))


def _local_token(tenant: str = "demo") -> str:
    """A token for the local stack, minted from its per-checkout secret; production callers pass --token."""
    secret_file = _var_dir() / "secrets" / "local-jwt-secret"
    if not secret_file.exists():
        err.print("[red]no --token given and no local stack secret found (start one with `make run`)[/red]")
        raise typer.Exit(2)
    from captionqc.runtime.http.auth import mint_local_token

    return mint_local_token(secret_file.read_text().strip(), tenant=tenant, scopes=("jobs:write", "jobs:read"))


def _client(gateway: str, status: str, token: str | None) -> CaptionqcClient:
    return CaptionqcClient(gateway_url=gateway, status_url=status, token=token or _local_token())


def _tenant_of(token: str) -> str | None:
    """The tenant a token acts for, read without verifying it (the services verify it; this only picks a folder)."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    tenant = claims.get("tenant")
    return tenant if isinstance(tenant, str) else None


def _media_uri(target: str, tenant: str | None) -> str:
    if "://" in target:
        return target
    path = Path(target)
    if not path.is_file():
        err.print(f"[red]{target}: no such file[/red]")
        raise typer.Exit(2)
    if tenant is None:
        err.print("[red]cannot tell the token's tenant: pass --tenant[/red]")
        raise typer.Exit(2)
    from captionqc.devstack.media import upload
    from captionqc.runtime.tenants import TenantError

    # The services read a tenant's file:// media only in its own folder of the local stack's media root: the file
    # is copied to <media root>/<tenant>/uploads/<content hash>-<name>, which no other upload can overwrite.
    try:
        return upload(_var_dir() / "media", tenant, path).as_uri()
    except TenantError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _print_outcome(client: CaptionqcClient, view: JobView) -> int:
    if view.state is JobState.FAILED:
        failure = view.failure
        reason = f"{failure.reason.value}: {failure.message}" if failure else "unknown reason"
        err.print(f"[red]job {view.job_id} failed — {reason}[/red]")
        if view.trace_id:
            err.print(f"trace id: {view.trace_id}")
        return 1
    findings = client.findings(view.job_id)
    console.print(findings_table(findings.findings, title=f"Findings for job {view.job_id}"))
    counts = ", ".join(f"{k.value}: {v}" for k, v in sorted(findings.finding_counts.items())) or "none"
    console.print(f"{len(findings.findings)} finding(s) — {counts}")
    console.print(f"trace id: [bold]{view.trace_id or 'unknown'}[/bold]")
    return 0


@app.command()
def submit(
    target: Annotated[str, typer.Argument(help="A local media file, or a gs:// / file:// / https:// URI.")],
    gateway: GatewayOpt = "http://127.0.0.1:8080",
    status: StatusOpt = "http://127.0.0.1:8081",
    token: TokenOpt = None,
    language: Annotated[str, typer.Option(help="BCP-47 language of the speech.")] = "en-US",
    glossary: Annotated[list[str] | None, typer.Option(help="A term never to flag (repeatable).")] = None,
    ng_word: Annotated[list[str] | None, typer.Option(help="A word always to flag (repeatable).")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Makes a retried submit return the same job.")] = None,
    wait: Annotated[bool, typer.Option(help="Watch progress and print the findings.")] = False,
    tenant: Annotated[
        str | None, typer.Option(help="Tenant whose media folder a local file goes to (default: the token's).")
    ] = None,
) -> None:
    """Submit a job; prints its id (and, with --wait, its progress and findings)."""
    client = _client(gateway, status, token)
    job = JobCreate(
        media_uri=_media_uri(target, tenant or _tenant_of(client.token)),
        language=language,
        options=JobOptions(glossary=glossary or [], ng_words=ng_word or []),
    )
    try:
        accepted = client.submit(job, idempotency_key=idempotency_key)
    except ApiError as exc:
        err.print(f"[red]{exc}[/red]")
        if isinstance(exc.body, dict):
            err.print(pretty_json(exc.body))
        raise typer.Exit(1) from None
    console.print(f"job [bold]{accepted.job_id}[/bold] accepted — status: {accepted.links.status}")
    if wait:
        raise typer.Exit(_watch_and_report(client, accepted.job_id))


def _watch_and_report(client: CaptionqcClient, job_id: str) -> int:
    view = watch_stream(console, client.stream(job_id))
    if view is None or view.state not in (JobState.COMPLETED, JobState.FAILED):
        view = client.job(job_id)
    return _print_outcome(client, view)


@app.command()
def watch(
    job_id: str,
    gateway: GatewayOpt = "http://127.0.0.1:8080",
    status: StatusOpt = "http://127.0.0.1:8081",
    token: TokenOpt = None,
) -> None:
    """Show live progress of a job until it ends, then its findings."""
    client = _client(gateway, status, token)
    try:
        raise typer.Exit(_watch_and_report(client, job_id))
    except ApiError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@app.command()
def findings(
    job_id: str,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
    gateway: GatewayOpt = "http://127.0.0.1:8080",
    status: StatusOpt = "http://127.0.0.1:8081",
    token: TokenOpt = None,
) -> None:
    """Print a job's findings as a table, JSON, CSV or WebVTT."""
    client = _client(gateway, status, token)
    try:
        if fmt is Format.TABLE:
            result = client.findings(job_id)
            console.print(findings_table(result.findings, title=f"Findings for job {job_id} ({result.state.value})"))
        else:
            sys.stdout.write(client.findings_as(job_id, fmt.value))
    except ApiError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Tenant the token acts for (registered: `captionqc tenants`).")] = "demo",
    scope: Annotated[list[str] | None, typer.Option(help="Scope (repeatable).")] = None,
    ttl: Annotated[int, typer.Option(min=1, help="Lifetime in seconds (at most the services' 24 h maximum).")] = 3600,
) -> None:
    """Mint a local token for the `make run` stack (signed with its per-checkout secret)."""
    secret_file = _var_dir() / "secrets" / "local-jwt-secret"
    if not secret_file.exists():
        err.print("[red]no local stack secret yet: start the stack once with `make run`[/red]")
        raise typer.Exit(2)
    from captionqc.runtime.http.auth import mint_local_token

    scopes = scope or ["jobs:write", "jobs:read"]
    try:
        print(mint_local_token(secret_file.read_text().strip(), tenant=tenant, scopes=scopes, ttl_s=ttl))
    except ValueError as exc:  # a lifetime the services would refuse
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


# -- the tenant registry ------------------------------------------------------------------------------------------
tenants_app = typer.Typer(
    help="The tenant registry every token is checked against (the gateway's database: CAPTIONQC_GATEWAY_DATABASE_URL).",
    no_args_is_help=True,
)
app.add_typer(tenants_app, name="tenants")

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CAPTIONQC_GATEWAY_DATABASE_URL",
        help="The gateway's database (postgresql+asyncpg://…); `captionqc stack run` prints the local one.",
        show_default=False,
    ),
]
GsPrefixOpt = Annotated[
    list[str] | None,
    typer.Option("--gs-prefix", help="A gs://bucket/ or gs://bucket/prefix/ area the tenant's media may come from "
                 "(repeatable)."),
]  # fmt: skip
JobsOpt = Annotated[int | None, typer.Option(help="Jobs accepted and not yet finished, at most.")]
RateOpt = Annotated[int | None, typer.Option(help="Jobs submitted in any 60 s, at most.")]
StreamsOpt = Annotated[int | None, typer.Option(help="Concurrent live-progress streams, at most.")]


def _registry(database_url: str | None, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(connection)`` in one registry transaction; a refused change or an unreachable database exits."""
    import asyncio

    from captionqc.runtime.tenants import TenantError, registry_transaction

    if not database_url:
        err.print("[red]set CAPTIONQC_GATEWAY_DATABASE_URL (or --database-url) to the gateway's database[/red]")
        raise typer.Exit(2)

    async def run() -> T:
        async with registry_transaction(database_url) as conn:
            return await work(conn)

    try:
        return asyncio.run(run())
    except TenantError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = " (run `python -m captionqc.gateway.migrate` first)" if "does not exist" in first_line else ""
        err.print(f"[red]the registry could not be reached: {first_line}{hint}[/red]")
        raise typer.Exit(1) from None


def _quotas(jobs: int | None, rate: int | None, streams: int | None) -> dict[str, int]:
    values = {"max_jobs_in_flight": jobs, "max_submissions_per_minute": rate, "max_streams": streams}
    return {name: value for name, value in values.items() if value is not None}


@tenants_app.command("add")
def tenants_add(
    name: Annotated[str, typer.Argument(help="The tenant's name, as tokens carry it (lowercase, digits, - and _).")],
    gs_prefix: GsPrefixOpt = None,
    max_jobs_in_flight: JobsOpt = None,
    max_submissions_per_minute: RateOpt = None,
    max_streams: StreamsOpt = None,
    webhook_secret: Annotated[
        str | None, typer.Option(help="HMAC key of the tenant's webhooks; generated (and shown once) when absent.")
    ] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Register a tenant; quotas not given take the registry's defaults."""
    from captionqc.runtime.tenants import Tenant, add_tenant

    tenant = Tenant(
        tenant=name,
        gs_prefixes=tuple(gs_prefix or ()),
        webhook_secret=webhook_secret or "",
        **_quotas(max_jobs_in_flight, max_submissions_per_minute, max_streams),  # type: ignore[arg-type]
    )
    added = _registry(database_url, lambda conn: add_tenant(conn, tenant))
    console.print(f"tenant [bold]{added.tenant}[/bold] registered — {_describe(added)}")
    if not webhook_secret:
        # Plain print, shown this once: the registry never prints secrets again.
        print(f"webhook secret (store it now; it is not shown again): {added.webhook_secret}", flush=True)


@tenants_app.command("list")
def tenants_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per tenant, per line.")] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """List registered tenants, their media areas and quotas (never their webhook secrets)."""
    import json

    from captionqc.runtime.tenants import list_tenants

    found = _registry(database_url, list_tenants)
    if as_json:
        for t in found:
            row = {
                "tenant": t.tenant,
                "enabled": t.enabled,
                "gs_prefixes": list(t.gs_prefixes),
                "max_jobs_in_flight": t.max_jobs_in_flight,
                "max_submissions_per_minute": t.max_submissions_per_minute,
                "max_streams": t.max_streams,
            }
            print(json.dumps(row))
        return
    from rich.table import Table

    table = Table("tenant", "enabled", "gs:// areas", "jobs in flight", "submissions/min", "streams")
    for t in found:
        areas = "\n".join(t.gs_prefixes) or "—"
        table.add_row(
            t.tenant,
            "yes" if t.enabled else "[red]no[/red]",
            areas,
            str(t.max_jobs_in_flight),
            str(t.max_submissions_per_minute),
            str(t.max_streams),
        )
    console.print(table)


def _describe(t: Any) -> str:
    state = "enabled" if t.enabled else "disabled"
    areas = ", ".join(t.gs_prefixes) or "no gs:// areas"
    return (
        f"{state}; {areas}; at most {t.max_jobs_in_flight} jobs in flight, "
        f"{t.max_submissions_per_minute} submissions/min, {t.max_streams} streams"
    )


def _set_fields(name: str, database_url: str | None, **changes: Any) -> Any:
    from captionqc.runtime.tenants import update_tenant

    return _registry(database_url, lambda conn: update_tenant(conn, name, **changes))


@tenants_app.command("disable")
def tenants_disable(name: str, database_url: DatabaseOpt = None) -> None:
    """Refuse the tenant's tokens (401/403 within the services' registry cache time, 5 s by default)."""
    changed = _set_fields(name, database_url, enabled=False)
    console.print(f"tenant [bold]{changed.tenant}[/bold] disabled")


@tenants_app.command("enable")
def tenants_enable(name: str, database_url: DatabaseOpt = None) -> None:
    """Accept the tenant's tokens again."""
    changed = _set_fields(name, database_url, enabled=True)
    console.print(f"tenant [bold]{changed.tenant}[/bold] enabled")


@tenants_app.command("set")
def tenants_set(
    name: str,
    gs_prefix: GsPrefixOpt = None,
    no_gs_prefixes: Annotated[bool, typer.Option(help="Remove every gs:// area.")] = False,
    max_jobs_in_flight: JobsOpt = None,
    max_submissions_per_minute: RateOpt = None,
    max_streams: StreamsOpt = None,
    rotate_webhook_secret: Annotated[
        bool, typer.Option(help="Generate a new webhook secret and show it once.")
    ] = False,
    webhook_secret: Annotated[str | None, typer.Option(help="Set this webhook secret.")] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Change a tenant's media areas, quotas or webhook secret (--gs-prefix replaces the whole list)."""
    from captionqc.runtime.tenants import new_webhook_secret

    changes: dict[str, Any] = _quotas(max_jobs_in_flight, max_submissions_per_minute, max_streams)
    if gs_prefix and no_gs_prefixes:
        err.print("[red]--gs-prefix and --no-gs-prefixes contradict each other[/red]")
        raise typer.Exit(2)
    if gs_prefix or no_gs_prefixes:
        changes["gs_prefixes"] = list(gs_prefix or ())
    if rotate_webhook_secret and webhook_secret:
        err.print("[red]--rotate-webhook-secret and --webhook-secret contradict each other[/red]")
        raise typer.Exit(2)
    new_secret = new_webhook_secret() if rotate_webhook_secret else webhook_secret
    if new_secret is not None:
        changes["webhook_secret"] = new_secret
    if not changes:
        err.print(
            "[red]nothing to change: give a quota, --gs-prefix, --no-gs-prefixes or a webhook secret option[/red]"
        )
        raise typer.Exit(2)
    changed = _set_fields(name, database_url, **changes)
    console.print(f"tenant [bold]{changed.tenant}[/bold] — {_describe(changed)}")
    if rotate_webhook_secret:
        print(f"webhook secret (store it now; it is not shown again): {changed.webhook_secret}", flush=True)


@stack_app.command("run")
def stack_run(
    var: Annotated[Path | None, typer.Option(help="State folder (default: var/ in the repo).")] = None,
    log_level: Annotated[str, typer.Option(help="Lowest log level shown.")] = "INFO",
) -> None:
    """Start the whole system and keep serving until Ctrl-C."""
    from captionqc.devstack.logview import LogPrinter
    from captionqc.devstack.stack import DEMO_TENANT, running_stack

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with running_stack(var=var, printer=LogPrinter(min_level=log_level), step=_step) as stack:
            tok = stack.token(DEMO_TENANT)
            console.rule("[bold green]captionqc is running")
            console.print(f"gateway   {stack.gateway_url}   (OpenAPI: {stack.gateway_url}/docs)")
            console.print(f"status    {stack.status_url}   (OpenAPI: {stack.status_url}/docs)")
            console.print(
                f"pubsub    PUBSUB_EMULATOR_HOST={stack.emulator.host}   admin: {stack.emulator.admin_url}/v1/state"
            )
            console.print(f"traces    {stack.trace_file}")
            console.print(
                f"media     put files under {stack.paths.media}/<tenant>/ "
                f"(samples for {DEMO_TENANT}: {stack.samples(DEMO_TENANT)})"
            )
            # Plain print: a rich console would wrap the token across lines and break copy-paste.
            print(f"\nexport CAPTIONQC_TOKEN={tok}", flush=True)
            print(
                f"export CAPTIONQC_GATEWAY_URL={stack.gateway_url} CAPTIONQC_STATUS_URL={stack.status_url}\n"
                f"export CAPTIONQC_GATEWAY_DATABASE_URL='{stack.pg.url('captionqc')}'   # for `captionqc tenants`\n"
                ".venv/bin/captionqc submit samples/news_council.mp4 --wait\n",
                flush=True,
            )
            console.rule("logs (Ctrl-C stops everything)")
            while not stop.is_set():
                stop.wait(0.5)
                for name, service in stack.services.items():
                    if service.process is not None and service.process.poll() is not None:
                        err.print(f"[red]{name} exited with code {service.process.returncode}[/red]")
                        stop.set()
    except KeyboardInterrupt:
        pass
    console.print("stopped.")


def _step(message: str) -> None:
    console.print(f"[dim]·[/dim] {message}")


@stack_app.command("demo")
def stack_demo(
    clip: Annotated[Path, typer.Option(help="Media file to check.")] = DEFAULT_CLIP,
    var: Annotated[Path | None, typer.Option(help="State folder (default: var/ in the repo).")] = None,
) -> None:
    """Start the system, submit a bundled sample clip, show live progress and the findings, then stop."""
    from captionqc.devstack.logview import LogPrinter
    from captionqc.devstack.stack import DEMO_TENANT, running_stack

    if not clip.is_file():
        err.print(f"[red]{clip}: no such file[/red]")
        raise typer.Exit(2)
    printer = LogPrinter(min_level="WARNING")
    started = time.monotonic()
    code = 1
    try:
        with running_stack(var=var, printer=printer, step=_step) as stack:
            client = CaptionqcClient(stack.gateway_url, stack.status_url, stack.token(DEMO_TENANT))
            accepted = client.submit(JobCreate(media_uri=stack.media_uri(clip, tenant=DEMO_TENANT)))
            console.print(f"submitted [bold]{clip.name}[/bold] → job {accepted.job_id}")
            view = watch_stream(console, client.stream(accepted.job_id, timeout_s=600))
            if view is None or view.state not in (JobState.COMPLETED, JobState.FAILED):
                view = client.job(accepted.job_id)
            code = _print_outcome(client, view)
    except Exception as exc:
        err.print(f"[red]demo failed: {exc}[/red]")
        for line in list(printer.recent)[-40:]:
            err.print(line, markup=False, highlight=False)
        raise typer.Exit(1) from None
    console.print(f"demo finished in {time.monotonic() - started:.1f} s")
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
