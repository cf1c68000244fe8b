"""SQL of the cross-check: recording inputs and deciding a job's outcome exactly once."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import and_, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from captionqc.crosscheck.tables import job_inputs

InputColumn = Literal["job", "ocr", "asr", "failure"]


async def record_input(session: AsyncSession, job_id: str, tenant: str, column: InputColumn, value: Any) -> None:
    """Store one input of a job. The first value of a column wins: a later copy never replaces what a decision
    may already have used."""
    table = job_inputs
    stmt = pg_insert(table).values(job_id=job_id, tenant=tenant, **{column: value})
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.job_id],
        set_={column: func.coalesce(table.c[column], stmt.excluded[column]), "updated_at": func.now()},
    )
    await session.execute(stmt)


async def claim_decision(session: AsyncSession, job_id: str) -> Row[Any] | None:
    """Mark the job decided if it can be and nobody has; return its inputs to the one caller that won.

    Two results committed at once by two workers both reach this UPDATE; the row lock serialises them and the
    second re-reads ``decided_at`` after the first commits, so exactly one transaction gets a row back.
    """
    table = job_inputs
    ready = or_(
        table.c.failure.is_not(None),
        and_(table.c.job.is_not(None), table.c.ocr.is_not(None), table.c.asr.is_not(None)),
    )
    stmt = (
        update(table)
        .where(table.c.job_id == job_id, table.c.decided_at.is_(None), ready)
        .values(decided_at=func.now())
        .returning(table.c.job_id, table.c.tenant, table.c.job, table.c.ocr, table.c.asr, table.c.failure)
    )
    return (await session.execute(stmt)).first()


async def set_outcome(session: AsyncSession, job_id: str, event_id: str) -> None:
    await session.execute(update(job_inputs).where(job_inputs.c.job_id == job_id).values(outcome_event_id=event_id))
