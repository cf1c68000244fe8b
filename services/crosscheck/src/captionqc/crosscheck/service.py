"""The cross-check's service layer: join OCR and ASR results per job, decide once, announce the outcome."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionqc.crosscheck import repository
from captionqc.crosscheck.checker import CheckerConfig, CheckResult, check_captions
from captionqc.crosscheck.tables import inbox, outbox
from captionqc.runtime.consumer import HandlerContext
from captionqc.runtime.db import unit_of_work
from captionqc.runtime.messaging_tables import add_to_outbox, claim_event
from captionqc.runtime.storage import ResultStore
from captionqc.schemas import (
    AsrCompleted,
    CaptionSegment,
    CloudEvent,
    CrosscheckCompleted,
    EventType,
    FailureReason,
    JobOptions,
    JobRequested,
    OcrCompleted,
    Stage,
    StageFailed,
    TimedWord,
    deterministic_event_id,
    new_event,
)

log = logging.getLogger(__name__)
SOURCE = "//captionqc/crosscheck"
CONSUMER = "crosscheck"


_DROPPED = {
    repository.Recorded.OTHER_TENANT: "the job was recorded for another tenant",
    repository.Recorded.DECIDED: "the job's outcome is already decided",
}


class CrosscheckService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: ResultStore,
        config: CheckerConfig,
        *,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._config = config
        self._on_committed = on_committed

    async def handle(self, event: CloudEvent[Any], ctx: HandlerContext) -> None:
        """Record one input; if it completes the job (or fails it), decide and queue the outcome, once."""
        column, value = await self._input_of(event)
        if column is None:
            return
        async with unit_of_work(self._sessions) as session:
            if not await claim_event(session, inbox, CONSUMER, event.source, event.id):
                log.info("duplicate event ignored")
                return
            recorded = await repository.record_input(session, event.data.job_id, event.data.tenant, column, value)
            if recorded is not repository.Recorded.STORED:
                # Neither tenant is named: this line is read by operators of both, and by neither tenant's peers.
                log.warning(
                    "input dropped: %s",
                    _DROPPED[recorded],
                    extra={"event_type": event.type.value, "outcome": recorded.value},
                )
                return
            decided = await repository.claim_decision(session, event.data.job_id)
            if decided is not None:
                outcome = await self._decide(decided, ctx)
                await add_to_outbox(session, outbox, outcome)
                await repository.set_outcome(session, decided.job_id, outcome.id)
                log.info("job decided", extra={"event_type": outcome.type.value})
        self._on_committed()

    async def _input_of(self, event: CloudEvent[Any]) -> tuple[repository.InputColumn | None, Any]:
        data = event.data
        if event.type is EventType.JOB_REQUESTED:
            assert isinstance(data, JobRequested)
            return "job", {"options": data.options.model_dump(mode="json"), "language": data.language}
        if event.type is EventType.OCR_COMPLETED:
            assert isinstance(data, OcrCompleted)
            segments = data.segments
            if segments is None:
                segments = (await self._load_claim_check(data.result_uri, OcrCompleted)).segments or []
            return "ocr", {"segments": [s.model_dump(mode="json") for s in segments], "engine": data.engine.name}
        if event.type is EventType.ASR_COMPLETED:
            assert isinstance(data, AsrCompleted)
            words = data.words
            if words is None:
                words = (await self._load_claim_check(data.result_uri, AsrCompleted)).words or []
            return "asr", {"words": [w.model_dump(mode="json") for w in words], "engine": data.engine.name}
        if event.type in {EventType.OCR_FAILED, EventType.ASR_FAILED}:
            assert isinstance(data, StageFailed)
            return "failure", {"stage": data.stage.value, "reason": data.reason.value, "message": data.message}
        log.info("event type not used by the cross-check", extra={"event_type": event.type.value})
        return None, None

    async def _load_claim_check(self, uri: str | None, model: type[OcrCompleted] | type[AsrCompleted]) -> Any:
        assert uri is not None
        raw = await asyncio.to_thread(self._store.get_json, uri)
        return model.model_validate_json(raw)

    async def _decide(self, row: Any, ctx: HandlerContext) -> CloudEvent[Any]:
        if row.failure is not None:
            failure = row.failure
            return new_event(
                EventType.CROSSCHECK_FAILED,
                StageFailed(
                    job_id=row.job_id,
                    tenant=row.tenant,
                    stage=Stage.CROSSCHECK,
                    reason=FailureReason(failure["reason"]),
                    message=f"{failure['stage']} failed: {failure['message']}"[:2000],
                ),
                source=SOURCE,
                event_id=deterministic_event_id(row.job_id, "crosscheck", "failed"),
            )
        segments = [CaptionSegment.model_validate_json(json.dumps(s)) for s in row.ocr["segments"]]
        words = [TimedWord.model_validate_json(json.dumps(w)) for w in row.asr["words"]]
        options = JobOptions.model_validate_json(json.dumps(row.job["options"]))
        result: CheckResult = await ctx.run_in_pool(check_captions, segments, words, options, self._config)
        return new_event(
            EventType.CROSSCHECK_COMPLETED,
            CrosscheckCompleted(job_id=row.job_id, tenant=row.tenant, findings=result.findings, summary=result.summary),
            source=SOURCE,
            event_id=deterministic_event_id(row.job_id, "crosscheck", "completed"),
        )
