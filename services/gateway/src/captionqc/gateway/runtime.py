"""What the lifespan opens once per process, and the dependency that hands it to routes."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from captionqc.gateway.settings import GatewaySettings
from captionqc.runtime.consumer import ConsumerRunner
from captionqc.runtime.http.auth import TokenVerifier
from captionqc.runtime.outbox_relay import OutboxRelay
from captionqc.runtime.pubsub import EventPublisher


@dataclass(frozen=True)
class GatewayRuntime:
    settings: GatewaySettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    publisher: EventPublisher
    relay: OutboxRelay
    verifier: TokenVerifier
    # Consuming gateway-intake and gateway-findings; None when settings.consume is off.
    runner: ConsumerRunner | None = None


def gateway_runtime(request: Request) -> GatewayRuntime:
    runtime: GatewayRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise RuntimeError("the gateway lifespan has not run")
    return runtime
