"""Benchmark the gateway as it runs in production (gunicorn + UvicornWorker), driven from a separate process.

One run: embedded PostgreSQL + the Pub/Sub emulator + the migrated gateway under the production command; then N
concurrent clients hit ``GET /healthz`` (trivial) and ``POST /v1/jobs`` for a fixed time each. Prints requests/s,
p50/p99 and errors for both, the ratio POST ÷ trivial, and whether every accepted job's event reached the topic
(counted on the emulator). Never fails on timing; exits non-zero only if the stack could not run or events are lost.

.venv/bin/python bench/gateway.py [--workers 2] [--clients 32] [--seconds 10] [--pool-size 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-0123456789abcdef0123456789"
TENANT = "bench"
# The tenant's registered gs:// area: the gateway accepts media only from there.
BENCH_AREA = "gs://broadcast-media/bench/"
BODY = {"media_uri": f"{BENCH_AREA}clip.mp4", "options": {"glossary": ["captionqc"]}}


# ---------------------------------------------------------------------------------------- the client process


async def _drive(base_url: str, path: str, clients: int, seconds: float, token: str) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    statuses: dict[int, int] = {}
    post = path == "/v1/jobs"
    expected = 202 if post else 200
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def one_client() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                start = time.perf_counter()
                try:
                    if post:
                        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
                        r = await client.post(path, json=BODY, headers=headers)
                    else:
                        r = await client.get(path)
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - start)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code != expected:
                    errors += 1

        started = time.monotonic()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.monotonic() - started
    latencies.sort()
    ok = statuses.get(expected, 0)
    return {
        "path": path,
        "requests": len(latencies),
        "accepted": ok,
        "errors": errors,
        "statuses": statuses,
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan"),
    }


def client_main(args: argparse.Namespace) -> int:
    results = []
    for path in ("/healthz", "/v1/jobs"):
        results.append(asyncio.run(_drive(args.base_url, path, args.clients, args.seconds, args.token)))
    print(json.dumps(results))
    return 0


# ----------------------------------------------------------------------------------------- the orchestrator


def _wait_http(url: str, timeout: float) -> None:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # our own 127.0.0.1 server
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready in {timeout} s")


async def _register_tenant(database_url: str) -> None:
    """The bench's tenant, with its media area; quotas at their ceiling, as the bench measures the gateway itself."""
    from captionqc.runtime.tenants import Tenant, ensure_tenant, registry_transaction

    ceiling = 100_000
    async with registry_transaction(database_url) as conn:
        await ensure_tenant(
            conn,
            Tenant(
                tenant=TENANT,
                gs_prefixes=(BENCH_AREA,),
                max_jobs_in_flight=ceiling,
                max_submissions_per_minute=ceiling,
            ),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pool-size", type=int, default=10, help="DB pool per worker")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args)

    from captionqc.devstack.stack import free_port
    from captionqc.gateway.migrate import migrate
    from captionqc.pubsub_emulator.testing import start_emulator
    from captionqc.runtime.http.auth import mint_local_token
    from captionqc.runtime.pg_local import start_local_postgres
    from captionqc.runtime.pubsub import apply_topology

    work = Path(tempfile.mkdtemp(prefix="captionqc-bench-gw-"))
    project = f"bench-{uuid.uuid4().hex[:8]}"
    pg = start_local_postgres(work / "pg", delete_on_stop=True)
    gunicorn: subprocess.Popen[bytes] | None = None
    try:
        pg.psql('CREATE DATABASE "gateway_bench";')
        url = pg.url("gateway_bench")
        migrate(url)
        asyncio.run(_register_tenant(url))
        with start_emulator() as emulator:
            os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
            apply_topology(project)
            port = free_port()
            env = {
                **os.environ,
                "CAPTIONQC_GATEWAY_DATABASE_URL": url,
                "CAPTIONQC_GATEWAY_GCP_PROJECT": project,
                "CAPTIONQC_GATEWAY_JWT_SECRET": SECRET,
                "CAPTIONQC_GATEWAY_DB_POOL_SIZE": str(args.pool_size),
                "PUBSUB_EMULATOR_HOST": emulator.host,
                "PYTHONWARNINGS": "ignore::DeprecationWarning",
            }
            command = [
                str(Path(sys.executable).parent / "gunicorn"),
                "-k",
                "uvicorn_worker.UvicornWorker",
                "captionqc.gateway.app:create_app()",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--graceful-timeout",
                "8",
            ]
            log_file = (work / "gateway.log").open("wb")
            gunicorn = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO)
            base_url = f"http://127.0.0.1:{port}"
            _wait_http(base_url + "/readyz", timeout=60)

            token = mint_local_token(SECRET, tenant=TENANT, scopes=["jobs:write"], ttl_s=3600)
            driver = subprocess.run(
                [sys.executable, __file__, "--client", "--base-url", base_url, "--token", token,
                 "--clients", str(args.clients), "--seconds", str(args.seconds)],
                capture_output=True, check=True, timeout=args.seconds * 2 + 120,
            )  # fmt: skip
            trivial, jobs = json.loads(driver.stdout)

            # Every accepted job's event must reach the topic: count them on a subscription's backlog.
            subscription = f"projects/{project}/subscriptions/status-jobs"
            give_up = time.monotonic() + 60
            backlog = 0
            while time.monotonic() < give_up:
                backlog = int(emulator.subscription_state(subscription)["backlog"])
                if backlog >= jobs["accepted"]:
                    break
                time.sleep(0.5)

            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait(timeout=40)
            gunicorn = None
            log_file.close()

            ratio = jobs["rps"] / trivial["rps"] if trivial["rps"] else float("nan")
            print(
                f"gateway bench: gunicorn -k uvicorn_worker.UvicornWorker --workers {args.workers}, "
                f"{args.clients} clients, {args.seconds:g} s per endpoint, db pool {args.pool_size}/worker"
            )
            print(f"{'endpoint':<16}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
            for name, r in (("GET /healthz", trivial), ("POST /v1/jobs", jobs)):
                print(
                    f"{name:<16}{r['requests']:>10}{r['rps']:>10.1f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}"
                    f"{r['errors']:>8}"
                )
            print(f"ratio POST /v1/jobs ÷ GET /healthz (req/s): {ratio:.2f}  (goal ≥ 0.5 with 0 errors)")
            print(f"statuses: healthz {trivial['statuses']}, jobs {jobs['statuses']}")
            lost = jobs["accepted"] - backlog
            where = subscription.rsplit("/", 1)[1]
            print(f"accepted jobs: {jobs['accepted']}; job.requested events on {where}: {backlog}")
            if lost > 0:
                print(f"LOST: {lost} accepted jobs were not published")
                return 1
            print("every accepted job was published")
            return 0
    finally:
        if gunicorn is not None and gunicorn.poll() is None:
            gunicorn.kill()
            gunicorn.wait(timeout=10)
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
