"""Benchmark the status projector against a plain batched INSERT of the same rows (prints a table; never fails).

.venv/bin/python bench/status_projection.py [--jobs 200] [--batch 100] [--repeat 2]

Both sides run in one process against one embedded PostgreSQL, each into a fresh database migrated with Alembic:

- **projector**: the events of ``--jobs`` jobs (job.requested, OCR/ASR progress ticks, OCR/ASR results,
  cross-check findings — interleaved across jobs as they would arrive) through `StatusService.project` in batches
  of ``--batch`` events: inbox claim, job row locks, the projector, upserts, timeline, findings, captions.
- **plain insert**: the rows the projection ended with (inbox, timeline, jobs, findings, caption segments) copied
  with multi-row INSERTs, ``--batch`` events' worth of rows per transaction: the floor any projector pays.

The ratio is projector events/s ÷ plain-insert events/s (goal ≥ 0.5). `projection_rates` is also callable from
``bench/pipeline.py``: ``projected, plain = await projection_rates(url_a, url_b, jobs_count=…, batch=…)``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from captionqc.runtime.db import session_factory
from captionqc.runtime.pg_local import start_local_postgres
from captionqc.schemas import (
    AsrCompleted,
    AsrStats,
    CaptionSegment,
    CheckKind,
    CloudEvent,
    CrosscheckCompleted,
    EngineInfo,
    EventType,
    FindingsSummary,
    JobRequested,
    MediaRef,
    OcrCompleted,
    OcrStats,
    Severity,
    Stage,
    StageProgress,
    TimedWord,
    TypoFinding,
    new_event,
    progress_type,
)
from captionqc.status.migrate import migrate
from captionqc.status.service import Incoming, StatusService
from captionqc.status.tables import caption_segments, findings, inbox, jobs, timeline

ENGINE = EngineInfo(name="bench", version="1")
TICKS = 4  # progress events per OCR and per ASR stage
SEGMENTS = 12
FINDINGS = 3


def job_events(job_id: str, t0: datetime) -> list[CloudEvent[Any]]:
    """The events of one job in the order they are published."""
    tenant = "bench"
    out: list[CloudEvent[Any]] = [
        new_event(
            EventType.JOB_REQUESTED,
            JobRequested(job_id=job_id, tenant=tenant, media=MediaRef(uri="gs://bench/clip.mp4"), requested_at=t0),
            source="//captionqc/gateway",
            time=t0,
        )
    ]
    for i in range(1, TICKS + 1):
        for stage in (Stage.OCR, Stage.ASR):
            payload = StageProgress(job_id=job_id, tenant=tenant, stage=stage, progress=i / (TICKS + 1))
            out.append(new_event(progress_type(stage), payload, source="//b", time=t0 + timedelta(seconds=i)))
    segments = [
        CaptionSegment(start_s=2.0 * k, end_s=2.0 * k + 1.8, text=f"caption number {k} on screen", confidence=0.9)
        for k in range(SEGMENTS)
    ]
    ocr_stats = OcrStats(media_duration_s=24.0, frames_sampled=48, frames_ocred=48, processing_s=5.0)
    out.append(
        new_event(
            EventType.OCR_COMPLETED,
            OcrCompleted(job_id=job_id, tenant=tenant, segments=segments, engine=ENGINE, stats=ocr_stats),
            source="//captionqc/ocr",
            time=t0 + timedelta(seconds=6),
        )
    )
    words = [TimedWord(start_s=0.3 * k, end_s=0.3 * k + 0.25, word="word", confidence=0.9) for k in range(60)]
    asr_stats = AsrStats(media_duration_s=24.0, processing_s=6.0, real_time_factor=0.25)
    out.append(
        new_event(
            EventType.ASR_COMPLETED,
            AsrCompleted(job_id=job_id, tenant=tenant, words=words, engine=ENGINE, stats=asr_stats),
            source="//captionqc/asr",
            time=t0 + timedelta(seconds=7),
        )
    )
    found = [
        TypoFinding(
            id=f"f{k}",
            start_s=2.0 * k,
            end_s=2.0 * k + 1.8,
            caption_text=f"caption number {k} on screen",
            word="numbr",
            suggestion="number",
            kind=CheckKind.MISSPELLING,
            confidence=0.9,
            severity=Severity.ERROR,
        )
        for k in range(FINDINGS)
    ]
    out.append(
        new_event(
            EventType.CROSSCHECK_COMPLETED,
            CrosscheckCompleted(
                job_id=job_id, tenant=tenant, findings=found, summary=FindingsSummary(counts={CheckKind.MISSPELLING: 3})
            ),
            source="//captionqc/crosscheck",
            time=t0 + timedelta(seconds=8),
        )
    )
    return out


def interleaved_events(jobs_count: int) -> list[CloudEvent[Any]]:
    """Round-robin across jobs: many jobs in flight at once, as on a busy stack."""
    t0 = datetime.now(UTC)
    per_job = [job_events(str(uuid.uuid4()), t0) for _ in range(jobs_count)]
    return [events[i] for i in range(len(per_job[0])) for events in per_job]


@dataclass
class Measured:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


async def run_projector(engine: AsyncEngine, events: list[CloudEvent[Any]], batch: int) -> Measured:
    service = StatusService(session_factory(engine))
    items = [Incoming(e) for e in events]
    started = time.perf_counter()
    for i in range(0, len(items), batch):
        await service.project(items[i : i + batch])
    return Measured(len(items), time.perf_counter() - started)


async def copy_rows_plainly(source: AsyncEngine, target: AsyncEngine, events: int, batch: int) -> Measured:
    """Insert the projected rows into ``target`` with plain multi-row INSERTs, ``batch`` events' worth at a time."""
    tables = (inbox, jobs, timeline, findings, caption_segments)
    rows: dict[str, list[dict[str, Any]]] = {}
    async with source.connect() as conn:
        for table in tables:
            rows[table.name] = [dict(r._mapping) for r in await conn.execute(select(table))]
            if table is timeline:
                for row in rows[table.name]:
                    row.pop("seq")
    # Spread the rows evenly over the same number of transactions as the projector used; the job rows go first
    # (findings and captions reference them), as the interleaved job.requested events create them first.
    chunks = max(1, -(-events // batch))
    started = time.perf_counter()
    for c in range(chunks):
        async with target.begin() as conn:
            for table in tables:
                all_rows = rows[table.name]
                if table is jobs:
                    part = all_rows if c == 0 else []
                else:
                    size = -(-len(all_rows) // chunks)
                    part = all_rows[c * size : (c + 1) * size]
                if part:
                    await conn.execute(table.insert(), part)
    return Measured(events, time.perf_counter() - started)


async def projection_rates(
    url_projector: str, url_plain: str, *, jobs_count: int, batch: int
) -> tuple[Measured, Measured]:
    events = interleaved_events(jobs_count)
    projector_engine = create_async_engine(url_projector, pool_size=2)
    plain_engine = create_async_engine(url_plain, pool_size=2)
    try:
        projected = await run_projector(projector_engine, events, batch)
        plain = await copy_rows_plainly(projector_engine, plain_engine, len(events), batch)
    finally:
        await projector_engine.dispose()
        await plain_engine.dispose()
    return projected, plain


def _data_dir() -> Path:
    base = Path(os.environ.get("CAPTIONQC_VAR_DIR", Path(__file__).resolve().parents[1] / "var")) / "bench-pg"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="status-", dir=base))


async def main_async(args: argparse.Namespace) -> None:
    data_dir = _data_dir()
    server = start_local_postgres(data_dir, delete_on_stop=True)
    try:
        results = []
        for run in range(args.repeat):
            names = [f"bench_status_{run}_{side}_{uuid.uuid4().hex[:6]}" for side in ("proj", "plain")]
            for name in names:
                await asyncio.to_thread(server.psql, f'CREATE DATABASE "{name}";')
                await asyncio.to_thread(migrate, server.url(name))
            projected, plain = await projection_rates(
                server.url(names[0]), server.url(names[1]), jobs_count=args.jobs, batch=args.batch
            )
            results.append((projected, plain))
        single_name = f"bench_status_single_{uuid.uuid4().hex[:6]}"
        await asyncio.to_thread(server.psql, f'CREATE DATABASE "{single_name}";')
        await asyncio.to_thread(migrate, server.url(single_name))
        single_engine = create_async_engine(server.url(single_name), pool_size=2)
        try:
            one_by_one = await run_projector(single_engine, interleaved_events(max(1, args.jobs // 10)), 1)
        finally:
            await single_engine.dispose()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    per_job = 1 + 2 * TICKS + 3
    print(f"status projection: {args.jobs} jobs × {per_job} events, batches of {args.batch} events")
    print(f"{'run':>3}  {'events':>7}  {'projector ev/s':>15}  {'plain insert ev/s':>18}  {'ratio':>6}")
    for i, (projected, plain) in enumerate(results, start=1):
        ratio = projected.rate / plain.rate
        print(f"{i:>3}  {projected.events:>7}  {projected.rate:>15.0f}  {plain.rate:>18.0f}  {ratio:>6.2f}")
    ratios = sorted(p.rate / q.rate for p, q in results)
    median = ratios[len(ratios) // 2]
    print(f"ratio projector ÷ plain insert: median {median:.2f}, best {ratios[-1]:.2f} (goal ≥ 0.5)")
    print(f"for reference, one event per transaction (no group commit): {one_by_one.rate:.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
