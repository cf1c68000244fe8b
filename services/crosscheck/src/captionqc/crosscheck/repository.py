"""SQL of the cross-check: recording inputs and deciding a job's outcome exactly once."""

from __future__ import annotations

import enum
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from captionqc.crosscheck.tables import job_inputs

InputColumn = Literal["job", "ocr", "asr", "failure"]


class Recorded(enum.Enum):
    """What became of an input."""

    STORED = "stored"
    # The job was first recorded with another tenant: an event naming someone else's job changes nothing.
    OTHER_TENANT = "other_tenant"
    # The job's outcome is decided: nothing arriving later may change what was (or will be) announced.
    DECIDED = "decided"


async def record_input(session: AsyncSession, job_id: str, tenant: str, column: InputColumn, value: Any) -> Recorded:
    """Store one input of a job, if the job is ``tenant``'s (or new) and undecided. The first value of a column
    wins: a later copy never replaces what a decision may already have used."""
    table = job_inputs
    stmt = pg_insert(table).values(job_id=job_id, tenant=tenant, **{column: value})
    upsert = stmt.on_conflict_do_update(
        index_elements=[table.c.job_id],
        set_={column: func.coalesce(table.c[column], stmt.excluded[column]), "updated_at": func.now()},
        # The tenant a job was first recorded with owns it; the row stays locked by the statement either way.
        where=and_(table.c.tenant == stmt.excluded.tenant, table.c.decided_at.is_(None)),
    ).returning(table.c.job_id)
    if (await session.execute(upsert)).first() is not None:
        return Recorded.STORED
    owner = (await session.execute(select(table.c.tenant).where(table.c.job_id == job_id))).scalar_one()
    return Recorded.DECIDED if owner == tenant else Recorded.OTHER_TENANT


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
