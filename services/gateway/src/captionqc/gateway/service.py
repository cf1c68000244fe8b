"""Accepting a job: check the media and callback URLs, admit it within the tenant's quotas, record the job and its
``job.requested`` event together; and noting when a job has finished.

Both doors call `accept_job`: ``POST /v1/jobs`` and the intake consumer (an upstream system's ``job.requested``).
The caller owns the transaction (one unit of work per request or message) and wakes the outbox relay after it
commits. Refusals are `ApiError`s with their HTTP status; `refusal_of` gives their `Refusal` code for intake.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from captionqc.gateway import repository
from captionqc.gateway.settings import GatewaySettings
from captionqc.gateway.tables import outbox
from captionqc.runtime.callback_url import check_callback_url
from captionqc.runtime.http.auth import Principal
from captionqc.runtime.http.errors import ApiError, Conflict, InvalidInput
from captionqc.runtime.media_uri import MediaArea, MediaUriError, check_media_uri
from captionqc.runtime.messaging_tables import add_to_outbox
from captionqc.runtime.tenants import Tenant
from captionqc.schemas import EventType, JobRequested, MediaRef, new_event
from captionqc.schemas.api import ErrorDetail, JobAccepted, JobCreate, JobLinks
from captionqc.schemas.reasons import Refusal

ACCEPTED = 202


@dataclass(frozen=True)
class Acceptance:
    """What to answer: a new job (``created``) or the replay of an earlier answer to the same Idempotency-Key."""

    status_code: int
    body: dict[str, Any]
    job_id: str
    created: bool


class IdempotencyConflict(Conflict):
    """409: the Idempotency-Key (an intake message's ``ce-id``) was used before with another request."""

    reason = Refusal.IDEMPOTENCY_CONFLICT

    def __init__(self, message: str) -> None:
        detail = ErrorDetail(loc=["header", "Idempotency-Key"], msg=message, type=self.reason)
        super().__init__(message, details=[detail])


class JobIdTaken(Conflict):
    """409: an intake message names a job id that is already a job's. Whose is not said."""

    reason = Refusal.JOB_ID_TAKEN
    error = "job_id_taken"


class QuotaExceeded(ApiError):
    """429: the tenant is at one of its quotas; ``Retry-After`` says when to try again."""

    status_code = 429
    error = "quota_exceeded"
    reason = Refusal.QUOTA_EXCEEDED

    def __init__(self, quota: str, limit: str, retry_after_s: int) -> None:
        message = f"Quota exceeded: {quota} (at most {limit}); retry in {retry_after_s} s."
        super().__init__(
            message,
            details=[ErrorDetail(loc=["quota", quota], msg=message, type=self.reason)],
            headers={"Retry-After": str(retry_after_s)},
        )
        self.quota = quota
        self.retry_after_s = retry_after_s


def refusal_of(exc: ApiError) -> Refusal:
    """The `Refusal` code of a refusal from this module: its own, else the rule a URL broke (``details[0].type``)."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, Refusal):
        return reason
    for detail in exc.details:
        if detail.type in Refusal.__members__.values():
            return Refusal(detail.type)
    return Refusal.INVALID_EVENT_DATA


def request_hash(job: JobCreate, job_id: uuid.UUID | None = None) -> str:
    """Hash of the canonical body: key order, whitespace and spelled-out defaults do not make a request differ.

    An intake request names its own job id: a ``ce-id`` replayed with another job id is another request.
    """
    body = job.model_dump(mode="json")
    if job_id is not None:
        body["job_id"] = str(job_id)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_quotas(tenant: Tenant, admissions: repository.Admissions, settings: GatewaySettings) -> None:
    """`QuotaExceeded` if admitting one more job would exceed the tenant's submissions per minute or jobs in
    flight."""
    if admissions.submitted_last_minute >= tenant.max_submissions_per_minute:
        oldest = admissions.oldest_in_last_minute or admissions.now
        # A slot frees when the oldest submission of the last minute leaves the window.
        wait = math.ceil(60 - (admissions.now - oldest).total_seconds())
        limit = f"{tenant.max_submissions_per_minute} a minute"
        raise QuotaExceeded("max_submissions_per_minute", limit, max(1, wait))
    if admissions.in_flight >= tenant.max_jobs_in_flight:
        limit = f"{tenant.max_jobs_in_flight} unfinished jobs"
        raise QuotaExceeded("max_jobs_in_flight", limit, settings.quota_retry_after_s)


def _rejected(field: str, exc: MediaUriError) -> InvalidInput:
    return InvalidInput(
        f"{field} is not allowed: {exc.message}",
        details=[ErrorDetail(loc=["body", field], msg=exc.message, type=exc.rule)],
    )


def media_area(principal: Principal) -> MediaArea:
    """The caller's media area: ``<media_root>/<tenant>/`` and the ``gs://`` prefixes the tenant registry gives it
    (none when the registry has no entry: then no ``gs://`` media at all)."""
    registration = principal.registration
    return MediaArea(principal.tenant, gs_prefixes=registration.gs_prefixes if registration is not None else ())


async def check_urls(job: JobCreate, settings: GatewaySettings, area: MediaArea) -> None:
    """Apply the media URI policy for the caller's ``area`` and the callback-URL policy; 422 naming the field and
    the rule (``outside_tenant_area`` for another tenant's media, before anything looks for it)."""
    policy = settings.media_policy()
    try:
        if urlsplit(job.media_uri).scheme.lower() == "https":
            # Resolving the host is blocking DNS: off the event loop.
            await asyncio.to_thread(check_media_uri, job.media_uri, policy, area=area)
        else:
            check_media_uri(job.media_uri, policy, area=area)
    except MediaUriError as exc:
        raise _rejected("media_uri", exc) from None
    if job.callback_url is None:
        return
    try:
        # The status service applies the same policy again before each delivery.
        await asyncio.to_thread(check_callback_url, job.callback_url, settings.callback_policy())
    except MediaUriError as exc:
        raise _rejected("callback_url", exc) from None


async def accept_job(
    session: AsyncSession,
    *,
    principal: Principal,
    job: JobCreate,
    settings: GatewaySettings,
    idempotency_key: str | None,
    request_id: str | None,
    requested_job_id: uuid.UUID | None = None,
) -> Acceptance:
    """Record the job and queue ``captionqc.job.requested`` in the caller's transaction.

    ``requested_job_id``: the id an intake message gives its job (HTTP callers get a new one). A replay of an
    earlier request with the same key is answered as before and counts against no quota.
    """
    await check_urls(job, settings, media_area(principal))
    job_id = requested_job_id or uuid.uuid4()
    status_url = f"{settings.status_base_url.rstrip('/')}/v1/jobs/{job_id}"
    body = JobAccepted(job_id=str(job_id), links=JobLinks(status=status_url)).model_dump(mode="json")
    if idempotency_key is not None:
        digest = request_hash(job, requested_job_id)
        earlier = await repository.claim_idempotency_key(
            session,
            tenant=principal.tenant,
            key=idempotency_key,
            request_hash=digest,
            job_id=job_id,
            response=repository.StoredResponse(request_hash=digest, status_code=ACCEPTED, body=body),
            ttl_s=settings.idempotency_key_ttl_s,
        )
        if earlier is not None:
            if earlier.request_hash != digest:
                raise IdempotencyConflict("This Idempotency-Key was already used with a different request body.")
            return Acceptance(earlier.status_code, earlier.body, str(earlier.body.get("job_id")), created=False)

    await admit(session, principal, settings)
    if not await repository.insert_job(session, job_id=job_id, tenant=principal.tenant, job=job, request_id=request_id):
        raise JobIdTaken(f"Job id {job_id} is already taken.")
    event = new_event(
        EventType.JOB_REQUESTED,
        JobRequested(
            job_id=str(job_id),
            tenant=principal.tenant,
            media=MediaRef(uri=job.media_uri),
            language=job.language,
            options=job.options,
            callback_url=job.callback_url,
            requested_at=datetime.now(UTC),
        ),
        source=settings.event_source,
    )
    await add_to_outbox(session, outbox, event)
    return Acceptance(ACCEPTED, body, str(job_id), created=True)


async def admit(session: AsyncSession, principal: Principal, settings: GatewaySettings) -> None:
    """Hold the tenant's admissions lock for the rest of the transaction and check its quotas (`QuotaExceeded`).

    Counted in the database, so the quotas hold across replicas; the lock makes the count and the insert that
    follows one step per tenant, so two replicas cannot both take its last slot.
    """
    if principal.registration is None:
        raise RuntimeError("the caller was not checked against the tenant registry")
    await repository.lock_admissions(session, principal.tenant)
    admissions = await repository.count_admissions(
        session, principal.tenant, stale_after_s=settings.in_flight_stale_after_s
    )
    check_quotas(principal.registration, admissions, settings)


async def record_finished(session: AsyncSession, *, job_id: str, tenant: str) -> bool:
    """The job's final event came back: it no longer counts as in flight. False if it is not that tenant's job
    (or not ours: accepted by no door of this gateway) or was already finished."""
    try:
        job_uuid = uuid.UUID(job_id)
    except ValueError:
        return False
    return await repository.mark_finished(session, job_id=job_uuid, tenant=tenant)
