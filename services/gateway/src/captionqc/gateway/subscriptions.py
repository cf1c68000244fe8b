"""The gateway's event edges: upstream job requests on ``gateway-intake``, finished jobs on ``gateway-findings``.

The intake handler is the message-shaped twin of ``POST /v1/jobs``: it authenticates the publisher's bearer token
(the ``authorization`` attribute, ``Bearer <jwt>``) exactly as the HTTP route does (signature, lifetime, tenant
registry, scope ``jobs:write``), checks that the job names the token's tenant, and calls the same
`service.accept_job` with the message's ``ce-id`` as the Idempotency-Key and the payload's ``job_id`` as the job's
id. Every refusal is a `MessageRefused` with its `Refusal` code: the runner dead-letters the message (without the
token) and acks it, and no job exists. A quota refusal is transient instead while the message has delivery
attempts left: the subscription redelivers it later, and only its last attempt is dead-lettered
(``quota_exceeded``), by us, so the token never rides along.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from pydantic import ValidationError

from captionqc.gateway import service
from captionqc.gateway.runtime import GatewayRuntime
from captionqc.runtime.consumer import HandlerContext, Route
from captionqc.runtime.db import unit_of_work
from captionqc.runtime.errors import MessageRefused, TransientError
from captionqc.runtime.http.auth import AUTH_REFUSALS
from captionqc.runtime.http.errors import ApiError
from captionqc.schemas import CloudEvent, JobRequested
from captionqc.schemas.api import JobCreate
from captionqc.schemas.envelope import describe_validation_error
from captionqc.schemas.reasons import Refusal
from captionqc.schemas.topology import TOPOLOGY

log = logging.getLogger(__name__)

INTAKE = "gateway-intake"
FINDINGS = "gateway-findings"
# The attribute upstream publishers put their bearer token in (the runner never forwards it anywhere).
AUTHORIZATION = "authorization"
WRITE_SCOPE = "jobs:write"
# What an Idempotency-Key may be over HTTP; a ce-id that is not one cannot be the intake's idempotency key.
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _last_attempt(subscription: str) -> int:
    dead_letter = TOPOLOGY.subscription(subscription).dead_letter
    return dead_letter.max_delivery_attempts if dead_letter is not None else 1


def gateway_routes(runtime: GatewayRuntime) -> list[Route]:
    """The two subscriptions the gateway consumes, bound to what its lifespan opened."""
    last_attempt = _last_attempt(INTAKE)

    async def on_intake(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        await accept_intake(runtime, event, final_attempt=ctx.delivery_attempt >= last_attempt)

    async def on_findings(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        async with unit_of_work(runtime.sessions) as session:
            await service.record_finished(session, job_id=event.data.job_id, tenant=event.data.tenant)

    settings = runtime.settings
    return [
        Route(INTAKE, on_intake, max_messages=settings.intake_max_messages),
        Route(FINDINGS, on_findings, max_messages=16),
    ]


async def accept_intake(runtime: GatewayRuntime, event: CloudEvent[Any], *, final_attempt: bool) -> None:
    """Authenticate an upstream ``job.requested`` and accept it as ``POST /v1/jobs`` would; `MessageRefused` if not."""
    try:
        principal = await runtime.verifier.authenticate(event.extensions.get(AUTHORIZATION), [WRITE_SCOPE])
    except AUTH_REFUSALS as exc:
        raise MessageRefused(exc.reason, exc.message) from None
    request: JobRequested = event.data
    if request.tenant != principal.tenant:
        # Neither tenant is named: the record of a refused message must not tell one tenant about another.
        raise MessageRefused(Refusal.TENANT_MISMATCH, "The job names another tenant than its publisher's token.")
    if not _IDEMPOTENCY_KEY.match(event.id):
        raise MessageRefused(
            Refusal.MALFORMED_ENVELOPE, "ce-id must be 1-255 printable ASCII characters (it is the idempotency key)."
        )
    try:
        job = JobCreate(
            media_uri=request.media.uri,
            language=request.language,
            options=request.options,
            callback_url=request.callback_url,
        )
    except ValidationError as exc:
        raise MessageRefused(
            Refusal.INVALID_EVENT_DATA, f"The job is not valid: {describe_validation_error(exc)}."
        ) from None
    try:
        async with unit_of_work(runtime.sessions) as session:
            outcome = await service.accept_job(
                session,
                principal=principal,
                job=job,
                settings=runtime.settings,
                idempotency_key=event.id,
                request_id=None,
                requested_job_id=uuid.UUID(request.job_id),
            )
    except service.QuotaExceeded as exc:
        if not final_attempt:
            raise TransientError(exc.message) from None
        raise MessageRefused(exc.reason, exc.message) from None
    except ApiError as exc:
        raise MessageRefused(service.refusal_of(exc), exc.message) from None
    if outcome.created:
        runtime.relay.wake()
    log.info("intake job %s", "accepted" if outcome.created else "replayed", extra={"tenant": principal.tenant})
