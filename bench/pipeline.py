"""End-to-end pipeline benchmark on the running local stack (prints a table; never fails on timing).

.venv/bin/python bench/pipeline.py [--clips samples/*.mp4] [--rounds 1]

Starts the whole system (embedded PostgreSQL, the Pub/Sub emulator, the five services, as `make run` does) on free
ports in a throwaway folder, submits each sample clip through the gateway one at a time, and reads per job from the
status service (its read model records when each stage's result arrived and what the engines reported):

- end-to-end seconds (job accepted → cross-check result projected), OCR and ASR stage seconds (request → result),
  cross-check seconds (the later of the two results → findings), projection lag (findings event time → projected);
- ratio end-to-end ÷ max(OCR, ASR): ≈ 1 when OCR and ASR truly run in parallel with little overhead (goal ≤ 1.15);
- ratio end-to-end ÷ media duration (goal ≤ 0.25 on a 2-core machine).

Then, in the same run, the status projection rate against a plain batched insert (see bench/status_projection.py).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import av
import httpx

from captionqc.cli.client import CaptionqcClient
from captionqc.devstack.logview import LogPrinter
from captionqc.devstack.stack import Stack, free_ports, running_stack
from captionqc.schemas import EventType
from captionqc.schemas.api import JobCreate
from captionqc.schemas.status_api import JobState, JobView

REPO = Path(__file__).resolve().parents[1]


@dataclass
class JobTiming:
    clip: str
    media_s: float
    e2e_s: float
    ocr_s: float
    asr_s: float
    crosscheck_s: float
    projection_lag_s: float

    @property
    def parallel_ratio(self) -> float:
        return self.e2e_s / max(self.ocr_s, self.asr_s)

    @property
    def media_ratio(self) -> float:
        return self.e2e_s / self.media_s


def media_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        return float(container.duration or 0) / 1_000_000


def run_job(stack: Stack, client: CaptionqcClient, clip: Path) -> JobTiming:
    accepted = client.submit(JobCreate(media_uri=stack.media_uri(clip, tenant="bench")))
    deadline = time.monotonic() + 600
    view: JobView | None = None
    while time.monotonic() < deadline:
        try:
            view = client.job(accepted.job_id)
            if view.state in (JobState.COMPLETED, JobState.FAILED):
                break
        except Exception:  # not projected yet
            pass
        time.sleep(0.1)
    if view is None or view.state is not JobState.COMPLETED:
        raise RuntimeError(f"{clip.name}: job did not complete ({view.failure if view else 'never seen'})")
    events = httpx.get(
        f"{stack.status_url}/v1/jobs/{accepted.job_id}/events",
        headers={"Authorization": f"Bearer {client.token}"},
        timeout=10,
    ).json()["events"]
    final = next(e for e in events if e["type"] == EventType.CROSSCHECK_COMPLETED.value)
    from datetime import datetime

    lag = (datetime.fromisoformat(final["received_at"]) - datetime.fromisoformat(final["time"])).total_seconds()
    assert view.completed_at is not None
    return JobTiming(
        clip=clip.name,
        media_s=media_duration(clip),
        e2e_s=(view.completed_at - view.created_at).total_seconds(),
        ocr_s=view.stages.ocr.seconds or float("nan"),
        asr_s=view.stages.asr.seconds or float("nan"),
        crosscheck_s=view.stages.crosscheck.seconds or float("nan"),
        projection_lag_s=lag,
    )


def print_table(rows: list[JobTiming]) -> None:
    header = (
        f"{'clip':<18}{'media s':>8}{'e2e s':>8}{'OCR s':>8}{'ASR s':>8}{'xcheck s':>9}{'proj lag s':>11}"
        f"{'e2e/max(OCR,ASR)':>18}{'e2e/media':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.clip:<18}{r.media_s:>8.1f}{r.e2e_s:>8.2f}{r.ocr_s:>8.2f}{r.asr_s:>8.2f}{r.crosscheck_s:>9.2f}"
            f"{r.projection_lag_s:>11.3f}{r.parallel_ratio:>18.2f}{r.media_ratio:>11.3f}"
        )
    print("-" * len(header))
    print(
        f"median e2e/max(OCR,ASR) = {statistics.median(r.parallel_ratio for r in rows):.2f} (goal ≤ 1.15); "
        f"median e2e/media = {statistics.median(r.media_ratio for r in rows):.3f} (goal ≤ 0.25)"
    )


async def projection_ratio(jobs: int) -> None:
    import shutil

    from status_projection import _data_dir, migrate, projection_rates

    from captionqc.runtime.pg_local import start_local_postgres

    data_dir = _data_dir()
    server = start_local_postgres(data_dir, delete_on_stop=True)
    try:
        names = [f"bench_pipe_{side}_{uuid.uuid4().hex[:6]}" for side in ("proj", "plain")]
        for name in names:
            await asyncio.to_thread(server.psql, f'CREATE DATABASE "{name}";')
            await asyncio.to_thread(migrate, server.url(name))
        projected, plain = await projection_rates(
            server.url(names[0]), server.url(names[1]), jobs_count=jobs, batch=100
        )
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"status projection: {projected.rate:.0f} events/s vs plain batched insert {plain.rate:.0f} events/s "
        f"→ ratio {projected.rate / plain.rate:.2f} (goal ≥ 0.5)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", nargs="*", type=Path, default=sorted((REPO / "samples").glob("news_*.mp4")))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--projection-jobs", type=int, default=200)
    args = parser.parse_args()
    import tempfile

    ports = free_ports()
    with (
        tempfile.TemporaryDirectory(prefix="captionqc-bench-") as var,
        running_stack(var=Path(var), ports=ports, fixed_ports=True, printer=LogPrinter(min_level="ERROR")) as stack,
    ):
        client = CaptionqcClient(stack.gateway_url, stack.status_url, stack.token(tenant="bench"))
        run_job(
            stack, client, args.clips[0]
        )  # warm-up: first-call costs (model pages, connections) are not the pipeline
        rows = [run_job(stack, client, clip) for _ in range(args.rounds) for clip in args.clips]
    print_table(rows)
    asyncio.run(projection_ratio(args.projection_jobs))


if __name__ == "__main__":
    main()
