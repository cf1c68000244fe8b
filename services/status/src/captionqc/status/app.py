"""The status service: one process that consumes every status subscription and serves the query API.

The lifespan opens the database engine, the Pub/Sub consumer (its events feed the projector through the batcher),
the deadline sweeper and the webhook sender, and closes them in reverse order: the consumer drains first, so no
message is acked for a projection that did not commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from captionqc.runtime.consumer import ConsumerRunner
from captionqc.runtime.db import create_engine, ping, session_factory
from captionqc.runtime.http.auth import install_auth, uninstall_auth
from captionqc.runtime.http.errors import install_error_handlers
from captionqc.runtime.http.health import health_router
from captionqc.runtime.http.middleware import install_middleware
from captionqc.runtime.logs import configure_logging
from captionqc.runtime.pubsub import EventPublisher
from captionqc.runtime.tenants import TenantDirectory
from captionqc.runtime.tracing import configure_tracing, shutdown_tracing
from captionqc.status.consumer import CaptionFetcher, ProjectionBatcher, status_routes
from captionqc.status.endpoints import router
from captionqc.status.service import JobChanges, StatusService
from captionqc.status.settings import StatusSettings
from captionqc.status.sweeper import DeadlineSweeper
from captionqc.status.webhooks import WebhookSender


@dataclass
class StatusState:
    """What the lifespan opened; routes reach it as ``request.app.state.status``."""

    settings: StatusSettings
    engine: AsyncEngine
    service: StatusService
    webhooks: WebhookSender
    sweeper: DeadlineSweeper
    runner: ConsumerRunner | None


def create_app(settings: StatusSettings | None = None) -> FastAPI:
    settings = settings or StatusSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.gcp_project, settings.log_level)
        configure_tracing(settings)
        engine = create_engine(settings)
        sessions = session_factory(engine)
        # Every token is checked against the tenant registry (written by the gateway's `captionqc tenants`).
        tenants = TenantDirectory(engine, ttl_s=settings.tenant_cache_s)
        install_auth(app, settings, tenants=tenants)
        client = httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False)
        # Webhooks are signed with each tenant's secret from the same registry.
        webhooks = WebhookSender(sessions, settings, client, tenants)
        service = StatusService(sessions, changes=JobChanges(), on_webhook_queued=webhooks.wake)
        sweeper = DeadlineSweeper(
            service,
            deadline_s=settings.stage_deadline_s,
            interval_s=settings.sweep_interval_s,
            batch=settings.sweep_batch,
        )
        batcher = ProjectionBatcher(
            service.project, max_batch=settings.projection_batch_size, max_wait_s=settings.projection_batch_wait_s
        )
        publisher = EventPublisher(settings.gcp_project)
        runner: ConsumerRunner | None = None
        try:
            batcher.start()
            if settings.consume:
                runner = ConsumerRunner(
                    project=settings.gcp_project,
                    source=f"//captionqc/{settings.service_name}",
                    routes=status_routes(settings, service, batcher, CaptionFetcher(settings.results_uri)),
                    publisher=publisher,
                    failure_stage=None,
                    grace_s=settings.shutdown_grace_s,
                )
                await runner.start()
            sweeper.start()
            webhooks.start()
            app.state.status = StatusState(settings, engine, service, webhooks, sweeper, runner)
            yield
        finally:
            uninstall_auth(app)
            if runner is not None:
                await runner.stop()
            await batcher.stop()
            await sweeper.stop()
            await webhooks.stop()
            await client.aclose()
            publisher.close()
            await engine.dispose()
            shutdown_tracing()

    app = FastAPI(
        title="captionqc status",
        version="1",
        summary="Job state, findings, timelines and live progress of captionqc jobs.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_middleware(app, max_body_bytes=settings.max_body_bytes)
    app.include_router(
        health_router({"database": _database_ready, "consumer": _consumer_ready, "workers": _workers_ready})
    )
    app.include_router(router)
    return app


def _state(request: Request) -> StatusState:
    state: StatusState = request.app.state.status
    return state


async def _database_ready(request: Request) -> bool:
    return await ping(_state(request).engine)


async def _consumer_ready(request: Request) -> bool:
    runner = _state(request).runner
    return runner is None or runner.running


async def _workers_ready(request: Request) -> bool:
    state = _state(request)
    return state.sweeper.running and state.webhooks.running
