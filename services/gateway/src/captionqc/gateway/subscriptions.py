"""The gateway's event edges: finished jobs on ``gateway-findings``.

A job's final event (``crosscheck.completed`` or ``.failed``) marks it finished, so it stops counting against its
tenant's jobs-in-flight quota. Only the job's own tenant's event does: one naming another tenant changes nothing.
"""

from __future__ import annotations

from typing import Any

from captionqc.gateway import service
from captionqc.gateway.runtime import GatewayRuntime
from captionqc.runtime.consumer import HandlerContext, Route
from captionqc.runtime.db import unit_of_work
from captionqc.schemas import CloudEvent

FINDINGS = "gateway-findings"


def gateway_routes(runtime: GatewayRuntime) -> list[Route]:
    """The subscriptions the gateway consumes, bound to what its lifespan opened."""

    async def on_findings(event: CloudEvent[Any], ctx: HandlerContext) -> None:
        async with unit_of_work(runtime.sessions) as session:
            await service.record_finished(session, job_id=event.data.job_id, tenant=event.data.tenant)

    return [Route(FINDINGS, on_findings, max_messages=16)]
