"""The query API: ``/v1/jobs…``. Routes parse, call the service, and render; every read is scoped to the caller's
tenant, and another tenant's job is indistinguishable from one that does not exist (404).

Nothing a caller sends reaches PostgreSQL unchecked: a job id in the path must be a UUID and a cursor one this API
handed out (else 422 ``invalid_id``), and a query parameter with a control character is refused (422
``control_character``) — a NUL used to reach the database and come back as a 500 with the SQL in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from captionqc.runtime.http.auth import Principal, require_scopes
from captionqc.runtime.http.errors import ApiError, InvalidInput, NotFound, error_responses
from captionqc.runtime.tenants import DEFAULT_MAX_STREAMS
from captionqc.schemas.api import ErrorDetail
from captionqc.schemas.reasons import Refusal
from captionqc.schemas.status_api import (
    JobFindings,
    JobPage,
    JobState,
    JobTimeline,
    JobView,
    StreamEventName,
)
from captionqc.status.projection import JOB_ID
from captionqc.status.repository import InvalidCursor
from captionqc.status.service import StatusService, StreamSlot
from captionqc.status.settings import StatusSettings
from captionqc.status.views import findings_csv, findings_view, findings_vtt, job_view, timeline_event

READ_SCOPE = "jobs:read"
# A stream refused for the tenant's cap: another of its streams usually ends within seconds (its job finishes).
_STREAM_RETRY_AFTER_S = 5
Reader = Annotated[Principal, Depends(require_scopes(READ_SCOPE))]


def get_service(request: Request) -> StatusService:
    service: StatusService = request.app.state.status.service
    return service


def get_settings(request: Request) -> StatusSettings:
    settings: StatusSettings = request.app.state.status.settings
    return settings


Service = Annotated[StatusService, Depends(get_service)]
Settings = Annotated[StatusSettings, Depends(get_settings)]

# C0 and C1 control characters (NUL among them): PostgreSQL stores no NUL, and none belongs in any parameter here.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Parameters with a validator of their own, which names the refusal more precisely.
_OWN_VALIDATION = frozenset({"cursor"})


def refuse_control_characters(request: Request) -> None:
    """Every query parameter, known to the route or not: no control characters."""
    for name, value in request.query_params.multi_items():
        if name in _OWN_VALIDATION:
            continue
        if _CONTROL.search(name) or _CONTROL.search(value):
            where = name if not _CONTROL.search(name) else "?"
            raise InvalidInput(
                "Query parameters must not contain control characters.",
                details=[
                    ErrorDetail(
                        loc=["query", where], msg="contains a control character", type=Refusal.CONTROL_CHARACTER
                    )
                ],
            )


def job_id_path(job_id: Annotated[str, Path(description="The job's id (a UUID).")]) -> str:
    """The job id of the path, lower-cased; 422 ``invalid_id`` unless it is a UUID (the input is not echoed)."""
    normalised = job_id.lower()
    if not JOB_ID.match(normalised):
        raise InvalidInput(
            "The job id must be a UUID.",
            details=[ErrorDetail(loc=["path", "job_id"], msg="not a UUID", type=Refusal.INVALID_ID)],
        )
    return normalised


JobId = Annotated[str, Depends(job_id_path)]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(refuse_control_characters)])
_JOB_ERRORS = error_responses(401, 403, 404, 422)


class NotAcceptable(ApiError):
    status_code = 406
    error = "not_acceptable"


class FindingsFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    VTT = "vtt"


_MEDIA_TYPES = {
    FindingsFormat.JSON: "application/json",
    FindingsFormat.CSV: "text/csv",
    FindingsFormat.VTT: "text/vtt",
}


def _not_found(job_id: str) -> NotFound:
    return NotFound(f"No job {job_id!r}.")


@router.get("", response_model=JobPage, responses=error_responses(401, 403, 422))
async def list_jobs(
    principal: Reader,
    service: Service,
    state: Annotated[list[JobState] | None, Query(description="Only jobs in these states (repeatable).")] = None,
    created_after: Annotated[datetime | None, Query(description="Created at or after (RFC 3339).")] = None,
    created_before: Annotated[datetime | None, Query(description="Created before (RFC 3339).")] = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JobPage:
    """The caller's jobs, newest first, one page at a time."""
    try:
        records, next_cursor = await service.list_jobs(
            principal.tenant,
            states=state or [],
            created_after=created_after,
            created_before=created_before,
            cursor=cursor,
            limit=limit,
        )
    except InvalidCursor as exc:
        raise InvalidInput(
            str(exc), details=[ErrorDetail(loc=["query", "cursor"], msg=str(exc), type=Refusal.INVALID_ID)]
        ) from None
    return JobPage(items=[job_view(r) for r in records], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobView, responses=_JOB_ERRORS)
async def get_job(principal: Reader, job_id: JobId, service: Service) -> JobView:
    """A job's state, stages, progress, timings, failure reason and trace id."""
    job = await service.get_job(principal.tenant, job_id)
    if job is None:
        raise _not_found(job_id)
    return job_view(job)


def _negotiate(fmt: FindingsFormat | None, accept: str | None) -> FindingsFormat:
    if fmt is not None:
        return fmt
    if not accept:
        return FindingsFormat.JSON
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                with contextlib.suppress(ValueError):
                    q = float(param[2:])
        if q > 0:
            ranked.append((-q, position, media.lower()))
    for _, _, media in sorted(ranked):
        if media in {"*/*", "application/*", "application/json"}:
            return FindingsFormat.JSON
        if media in {"text/csv", "text/*"}:
            return FindingsFormat.CSV
        if media == "text/vtt":
            return FindingsFormat.VTT
    raise NotAcceptable("Findings are available as application/json, text/csv or text/vtt.")


@router.get(
    "/{job_id}/findings",
    response_model=JobFindings,
    responses={
        200: {
            "description": "The findings: JSON (`JobFindings`), CSV (one row per finding) or WebVTT (the OCR'd "
            "captions with flagged words in `<c.typo.KIND>` spans).",
            "content": {"text/csv": {"schema": {"type": "string"}}, "text/vtt": {"schema": {"type": "string"}}},
        },
        **error_responses(401, 403, 404, 406, 422),
    },
)
async def get_findings(
    principal: Reader,
    job_id: JobId,
    request: Request,
    service: Service,
    format: Annotated[FindingsFormat | None, Query(description="Overrides the Accept header.")] = None,
) -> Any:
    """A job's findings as JSON, CSV or WebVTT (by `format`, else by the Accept header)."""
    chosen = _negotiate(format, request.headers.get("accept"))
    if chosen is FindingsFormat.VTT:
        found = await service.findings_and_captions(principal.tenant, job_id)
        if found is None:
            raise _not_found(job_id)
        job, findings, segments = found
        text = findings_vtt(job, findings, segments, captions_available=job.captions_state.value == "available")
        return PlainTextResponse(text, media_type=_MEDIA_TYPES[chosen])
    result = await service.findings(principal.tenant, job_id)
    if result is None:
        raise _not_found(job_id)
    job, findings = result
    if chosen is FindingsFormat.CSV:
        return Response(
            findings_csv(findings),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="findings-{job.job_id}.csv"'},
        )
    return findings_view(job, findings)


@router.get("/{job_id}/events", response_model=JobTimeline, responses=_JOB_ERRORS)
async def get_events(principal: Reader, job_id: JobId, service: Service) -> JobTimeline:
    """What happened to a job, event by event, in order."""
    rows = await service.timeline(principal.tenant, job_id)
    if rows is None:
        raise _not_found(job_id)
    return JobTimeline(job_id=job_id, events=[timeline_event(r) for r in rows])


@router.get(
    "/{job_id}/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `progress` events while the job runs and one `final` event when it "
            "completes or fails, then the stream closes. Every `data:` is a `JobView` as JSON.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **_JOB_ERRORS,
        429: {
            **error_responses(429)[429],
            "description": "The tenant already holds its `max_streams` open streams; retry after `Retry-After`.",
            "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
        },
    },
)
async def stream_job(
    principal: Reader, job_id: JobId, request: Request, service: Service, settings: Settings
) -> StreamingResponse:
    """Follow a job live (Server-Sent Events) until it completes or fails."""
    first = await service.get_job(principal.tenant, job_id)
    if first is None:
        raise _not_found(job_id)
    limit = principal.registration.max_streams if principal.registration is not None else DEFAULT_MAX_STREAMS
    slot = service.streams.take(principal.tenant, limit)
    if slot is None:
        raise TooManyStreams(limit)
    return _SlotStreamingResponse(
        _job_events(request, service, settings, principal.tenant, job_id),
        slot=slot,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class TooManyStreams(ApiError):
    """429: the tenant already holds its ``max_streams`` open streams (on this replica)."""

    status_code = 429
    error = "quota_exceeded"

    def __init__(self, limit: int) -> None:
        message = f"Quota exceeded: max_streams (at most {limit} open streams); retry in {_STREAM_RETRY_AFTER_S} s."
        super().__init__(
            message,
            details=[ErrorDetail(loc=["quota", "max_streams"], msg=message, type=Refusal.QUOTA_EXCEEDED)],
            headers={"Retry-After": str(_STREAM_RETRY_AFTER_S)},
        )


class _SlotStreamingResponse(StreamingResponse):
    """Gives its stream slot back however the response ends: finished, client gone, error or shutdown."""

    def __init__(self, content: AsyncIterator[str], *, slot: StreamSlot, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slot.release()


def _sse(name: StreamEventName, view: JobView) -> str:
    return f"event: {name.value}\nid: {view.updated_at.isoformat()}\ndata: {view.model_dump_json()}\n\n"


async def _job_events(
    request: Request, service: StatusService, settings: StatusSettings, tenant: str, job_id: str
) -> AsyncIterator[str]:
    """Send the job whenever it changes; close after its final state, on disconnect, or at ``stream_max_s``.

    Changes made in this process wake the stream at once; changes made by another replica are seen at the next
    poll of the database.
    """
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + settings.stream_max_s
    last_sent: datetime | None = None
    last_write = time.monotonic()
    yield "retry: 2000\n\n"
    with service.changes.watch(job_id) as changed:
        while loop.time() < ends_at:
            changed.clear()
            job = await service.get_job(tenant, job_id)
            if job is None:  # pragma: no cover - jobs are never deleted while streaming
                return
            if job.terminal:
                yield _sse(StreamEventName.FINAL, job_view(job))
                return
            if last_sent is None or job.updated_at != last_sent:
                last_sent = job.updated_at
                last_write = time.monotonic()
                yield _sse(StreamEventName.PROGRESS, job_view(job))
            elif time.monotonic() - last_write >= settings.stream_heartbeat_s:
                last_write = time.monotonic()
                yield ": keep-alive\n\n"  # an SSE comment: keeps proxies from closing an idle stream
            if await request.is_disconnected():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=settings.stream_poll_interval_s)
