"""Webhooks: one signed POST per finished job that asked for one (``callback_url``).

The projection queues a delivery row in the same transaction that finishes the job; the row's primary key is the
job id, so a redelivered final event or a second replica cannot queue a second one. A sender leases pending rows
(``FOR UPDATE SKIP LOCKED`` + ``leased_until``), POSTs with bounded retries and backoff (tenacity), and records
the outcome. A sender that dies mid-delivery leaves its lease to run out and another sender tries again: the
receiver may, rarely, see the same delivery twice and can dedupe on ``X-Captionqc-Delivery``.

Before each delivery the URL is checked again against the one callback policy (`captionqc.runtime.callback_url`,
the gateway's at submit); a refusal is recorded on the row (state ``refused``, ``last_error`` = ``<rule>: …``).

Signature: ``X-Captionqc-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the tenant's
webhook secret from the tenant registry>``; see the README for how a receiver verifies it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from captionqc.runtime.callback_url import check_callback_url
from captionqc.runtime.db import unit_of_work
from captionqc.runtime.media_uri import MediaUriError, request_target
from captionqc.runtime.tenants import TenantDirectory
from captionqc.schemas.reasons import Refusal
from captionqc.schemas.status_api import JobState
from captionqc.status import repository as repo
from captionqc.status.settings import StatusSettings
from captionqc.status.views import job_view

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Captionqc-Signature"
EVENT_HEADER = "X-Captionqc-Event"
DELIVERY_HEADER = "X-Captionqc-Delivery"
_BATCH = 20


class RetryableDelivery(Exception):
    """The receiver may accept a later attempt (5xx, 429, 408, timeout, connection refused)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RejectedDelivery(Exception):
    """The receiver refused it for good (any other 4xx): retrying the same body cannot help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: bytes, body: bytes, header: str, *, now: float, tolerance_s: float = 300.0) -> bool:
    """What a receiver does (kept here for the tests and as a reference implementation)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookSender:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: StatusSettings,
        client: httpx.AsyncClient,
        tenants: TenantDirectory,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._client = client
        self._tenants = tenants
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-sender")

    def wake(self) -> None:
        self._wakeup.set()

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._inflight) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._settings.webhook_poll_interval_s)
            self._wakeup.clear()
            try:
                await self.deliver_pending()
            except Exception:
                log.exception("webhook pass failed")

    async def deliver_pending(self) -> int:
        """Lease what is due and deliver it concurrently (each delivery retries on its own); returns how many."""
        now = datetime.now(UTC)
        async with unit_of_work(self._sessions) as session:
            leased = await repo.lease_deliveries(
                session, now, timedelta(seconds=self._settings.webhook_lease_s), _BATCH
            )
        for delivery in leased:
            task = asyncio.create_task(self._deliver(delivery), name=f"webhook-{delivery.job_id}")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return len(leased)

    async def _deliver(self, delivery: repo.Delivery) -> None:
        attempts = delivery.attempts
        status: int | None = None
        # The policy of today, not the one the gateway applied at submit: hosts may have left the allow-list since,
        # and the name may resolve elsewhere now.
        try:
            pinned = await asyncio.to_thread(check_callback_url, delivery.url, self._settings.callback_policy())
        except MediaUriError as exc:
            await self._refuse(delivery, exc.rule, exc.message)
            return
        tenant = await self._tenants.get(delivery.tenant)
        if tenant is None or not tenant.webhook_secret:
            await self._refuse(delivery, Refusal.UNKNOWN_TENANT, "the tenant is not in the registry")
            return
        if not tenant.enabled:
            await self._refuse(delivery, Refusal.TENANT_DISABLED, "the tenant is disabled")
            return
        async with self._sessions() as session:
            job = await repo.get_job_any_tenant(session, delivery.job_id)
        if job is None:  # pragma: no cover - the delivery row references the job
            await self._finish(delivery.job_id, "failed", attempts, None, "job not found")
            return
        body = job_view(job).model_dump_json().encode()
        event = "job.completed" if job.state is JobState.COMPLETED else "job.failed"
        secret = tenant.webhook_secret.encode()

        async def post() -> int:
            nonlocal attempts
            attempts += 1
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "captionqc-webhooks/1",
                SIGNATURE_HEADER: sign(secret, body, int(time.time())),
                EVENT_HEADER: event,
                DELIVERY_HEADER: delivery.job_id,
            }
            try:
                # To the address checked above, so a changed DNS answer cannot redirect the webhook.
                url, pin_headers, extensions = request_target(delivery.url, pinned)
                response = await self._client.post(
                    url, content=body, headers={**headers, **pin_headers}, extensions=extensions
                )
            except httpx.HTTPError as exc:
                raise RetryableDelivery(f"{type(exc).__name__}: {exc}") from exc
            if 200 <= response.status_code < 300:
                return response.status_code
            if response.status_code >= 500 or response.status_code in {408, 429}:
                raise RetryableDelivery(f"receiver answered {response.status_code}", response.status_code)
            raise RejectedDelivery(f"receiver answered {response.status_code}", response.status_code)

        settings = self._settings
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(settings.webhook_max_attempts),
                wait=wait_exponential(
                    multiplier=settings.webhook_backoff_initial_s, max=settings.webhook_backoff_max_s
                ),
                retry=retry_if_exception_type(RetryableDelivery),
                reraise=True,
            ):
                with attempt:
                    status = await post()
        except RetryableDelivery as exc:
            log.warning("webhook gave up after %s attempts: %s", attempts, exc, extra={"job_id": delivery.job_id})
            await self._finish(delivery.job_id, "failed", attempts, exc.status, str(exc))
            return
        except RejectedDelivery as exc:
            log.warning("webhook rejected: %s", exc, extra={"job_id": delivery.job_id})
            await self._finish(delivery.job_id, "failed", attempts, exc.status, str(exc))
            return
        log.info("webhook delivered", extra={"job_id": delivery.job_id, "attempt": attempts, "status": status})
        await self._finish(delivery.job_id, "delivered", attempts, status, None)

    async def _refuse(self, delivery: repo.Delivery, rule: Refusal, message: str) -> None:
        """Record a delivery the policy refuses: state ``refused``, ``last_error`` starting with the rule code."""
        log.warning("webhook refused: %s", message, extra={"job_id": delivery.job_id, "reason": rule.value})
        await self._finish(delivery.job_id, "refused", delivery.attempts, None, f"{rule.value}: {message}")

    async def _finish(self, job_id: str, state: str, attempts: int, status: int | None, error: str | None) -> None:
        async with unit_of_work(self._sessions) as session:
            await repo.finish_delivery(
                session,
                job_id,
                state=state,
                attempts=attempts,
                last_status=status,
                last_error=error,
                now=datetime.now(UTC),
            )
