"""The gateway's app factory: ``create_app(settings)``; ``create_app()`` reads ``GatewaySettings`` from the env.

Production: ``gunicorn -k uvicorn_worker.UvicornWorker "captionqc.gateway.app:create_app()" …`` (see README).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi

from captionqc.gateway import endpoints
from captionqc.gateway.runtime import GatewayRuntime, gateway_runtime
from captionqc.gateway.settings import GatewaySettings
from captionqc.gateway.subscriptions import gateway_routes
from captionqc.gateway.tables import outbox
from captionqc.runtime.consumer import ConsumerRunner
from captionqc.runtime.db import create_engine, ping, session_factory
from captionqc.runtime.http.auth import install_auth, uninstall_auth
from captionqc.runtime.http.errors import install_error_handlers
from captionqc.runtime.http.health import health_router
from captionqc.runtime.http.middleware import install_middleware
from captionqc.runtime.logs import configure_logging
from captionqc.runtime.outbox_relay import OutboxRelay
from captionqc.runtime.pubsub import EventPublisher
from captionqc.runtime.tenants import TenantDirectory
from captionqc.runtime.tracing import configure_tracing, shutdown_tracing
from captionqc.schemas.api import JobCreate

log = logging.getLogger(__name__)


async def database_ready(request: Request) -> bool:
    return await ping(gateway_runtime(request).engine)


async def relay_running(request: Request) -> bool:
    return gateway_runtime(request).relay.running


async def consumer_running(request: Request) -> bool:
    runner = gateway_runtime(request).runner
    return runner is None or runner.running


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.gcp_project, settings.log_level)
        configure_tracing(settings)
        engine = create_engine(settings)
        sessions = session_factory(engine)
        publisher = EventPublisher(settings.gcp_project, max_in_flight=settings.publisher_max_in_flight)
        relay = OutboxRelay(sessions, outbox, publisher, poll_interval_s=settings.relay_poll_interval_s)
        relay.start()
        # Every token is checked against the tenant registry, read through a short-lived cache.
        tenants = TenantDirectory(engine, ttl_s=settings.tenant_cache_s)
        verifier = install_auth(app, settings, tenants=tenants)
        runtime = GatewayRuntime(settings, engine, sessions, publisher, relay, verifier)
        runner: ConsumerRunner | None = None
        try:
            if settings.consume:
                # The intake door (upstream job requests) and the finished jobs (for the jobs-in-flight quota).
                runner = ConsumerRunner(
                    project=settings.gcp_project,
                    source=settings.event_source,
                    routes=gateway_routes(runtime),
                    publisher=publisher,
                    failure_stage=None,
                    grace_s=settings.shutdown_grace_s,
                    threads=1,
                )
                await runner.start()
            app.state.runtime = replace(runtime, runner=runner)
            yield
        finally:
            # Intake first: a message being accepted now still gets its job.requested into the outbox drained below.
            if runner is not None:
                await runner.stop()
            uninstall_auth(app)
            # Drain what this process committed, then close: stop() ends with a bounded pass over pending rows.
            # A relay that already died (readyz said so) is not awaited: its rows wait for the next process.
            if relay.running:
                await relay.stop()
            else:
                log.warning("outbox relay was not running at shutdown; unsent rows are left for the next process")
            await asyncio.to_thread(publisher.close)
            await engine.dispose()
            shutdown_tracing()
            app.state.runtime = None

    app = FastAPI(
        title="captionqc gateway",
        version="1.0.0",
        summary="Accepts caption-check jobs: authenticated, validated, idempotent, never lost.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_middleware(app, max_body_bytes=settings.max_body_bytes)
    app.include_router(
        health_router({"database": database_ready, "outbox_relay": relay_running, "consumer": consumer_running})
    )
    app.include_router(endpoints.router)
    _document_json_bodies(app, JobCreate)
    return app


def _document_json_bodies(app: FastAPI, *models: type[JobCreate]) -> None:
    """Add the models that routes parse themselves (see `endpoints.job_create_body`) to the OpenAPI components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes, openapi_version="3.1.0"
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(model_schema.pop("$defs", {}))
                components[model.__name__] = model_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
