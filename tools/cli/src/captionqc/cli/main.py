"""``captionqc``: submit media, watch jobs and read findings over the public API; run the local stack.

captionqc stack run                    start everything locally and keep serving (Ctrl-C stops)
captionqc stack demo                   start everything, check a bundled sample clip, print the findings
captionqc submit FILE|URI [--wait]     submit a job (a local file is handed over as file:// under the media root)
captionqc watch JOB                    live progress bars until the job ends
captionqc findings JOB --format table|json|csv|vtt
captionqc token --tenant acme --scope jobs:write --scope jobs:read
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

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


def _media_uri(target: str) -> str:
    if "://" in target:
        return target
    path = Path(target)
    if not path.is_file():
        err.print(f"[red]{target}: no such file[/red]")
        raise typer.Exit(2)
    media_root = _var_dir() / "media"
    resolved = path.resolve()
    if not resolved.is_relative_to(media_root.resolve()):
        # The services only read file:// media under their media root: hand the file over by copying it there.
        import shutil

        dest = media_root / "uploads" / path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        resolved = dest.resolve()
    return resolved.as_uri()


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
) -> None:
    """Submit a job; prints its id (and, with --wait, its progress and findings)."""
    client = _client(gateway, status, token)
    job = JobCreate(
        media_uri=_media_uri(target),
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
    tenant: Annotated[str, typer.Option(help="Tenant the token acts for.")] = "demo",
    scope: Annotated[list[str] | None, typer.Option(help="Scope (repeatable).")] = None,
) -> None:
    """Mint a local token for the `make run` stack (signed with its per-checkout secret)."""
    secret_file = _var_dir() / "secrets" / "local-jwt-secret"
    if not secret_file.exists():
        err.print("[red]no local stack secret yet: start the stack once with `make run`[/red]")
        raise typer.Exit(2)
    from captionqc.runtime.http.auth import mint_local_token

    print(mint_local_token(secret_file.read_text().strip(), tenant=tenant, scopes=scope or ["jobs:write", "jobs:read"]))


@stack_app.command("run")
def stack_run(
    var: Annotated[Path | None, typer.Option(help="State folder (default: var/ in the repo).")] = None,
    log_level: Annotated[str, typer.Option(help="Lowest log level shown.")] = "INFO",
) -> None:
    """Start the whole system and keep serving until Ctrl-C."""
    from captionqc.devstack.logview import LogPrinter
    from captionqc.devstack.stack import running_stack

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with running_stack(var=var, printer=LogPrinter(min_level=log_level), step=_step) as stack:
            tok = stack.token()
            console.rule("[bold green]captionqc is running")
            console.print(f"gateway   {stack.gateway_url}   (OpenAPI: {stack.gateway_url}/docs)")
            console.print(f"status    {stack.status_url}   (OpenAPI: {stack.status_url}/docs)")
            console.print(
                f"pubsub    PUBSUB_EMULATOR_HOST={stack.emulator.host}   admin: {stack.emulator.admin_url}/v1/state"
            )
            console.print(f"traces    {stack.trace_file}")
            console.print(
                f"media     put files under {stack.paths.media} (samples are in {stack.paths.media / 'samples'})"
            )
            # Plain print: a rich console would wrap the token across lines and break copy-paste.
            print(f"\nexport CAPTIONQC_TOKEN={tok}", flush=True)
            print(
                f"export CAPTIONQC_GATEWAY_URL={stack.gateway_url} CAPTIONQC_STATUS_URL={stack.status_url}\n"
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
    from captionqc.devstack.stack import running_stack

    if not clip.is_file():
        err.print(f"[red]{clip}: no such file[/red]")
        raise typer.Exit(2)
    printer = LogPrinter(min_level="WARNING")
    started = time.monotonic()
    code = 1
    try:
        with running_stack(var=var, printer=printer, step=_step) as stack:
            client = CaptionqcClient(stack.gateway_url, stack.status_url, stack.token())
            accepted = client.submit(JobCreate(media_uri=stack.media_uri(clip)))
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
