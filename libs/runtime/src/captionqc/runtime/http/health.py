"""``/healthz`` (the process answers) and ``/readyz`` (every dependency answers) as a router factory.

Checks are async callables taking the request (so they can reach resources the lifespan put on ``app.state``);
each is bounded by a timeout and a check that raises counts as failing. ``/readyz`` answers 503 when any fails,
so a load balancer stops routing to the instance without restarting it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

ReadinessCheck = Callable[[Request], Awaitable[bool]]
log = logging.getLogger("captionqc.http")


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, bool]


def health_router(checks: Mapping[str, ReadinessCheck], *, timeout_s: float = 2.0) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Liveness)
    async def healthz() -> Liveness:
        """The process is alive."""
        return Liveness()

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A dependency is not ready"}},
    )
    async def readyz(request: Request, response: Response) -> Readiness:
        """Every dependency answers (503 otherwise)."""

        async def run(name: str, check: ReadinessCheck) -> bool:
            try:
                return bool(await asyncio.wait_for(check(request), timeout=timeout_s))
            except Exception:
                log.warning("readiness check %s failed", name, exc_info=True)
                return False

        names = list(checks)
        results = dict(zip(names, await asyncio.gather(*(run(n, checks[n]) for n in names)), strict=True))
        ready = all(results.values())
        response.status_code = 200 if ready else 503
        return Readiness(status="ready" if ready else "not_ready", checks=results)

    return router


__all__ = ["Liveness", "Readiness", "ReadinessCheck", "health_router"]
