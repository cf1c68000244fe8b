"""Webhooks: one signed POST per finished job, retried after a 503, never twice; SSRF rules on the URL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import create_async_engine

from captionqc.runtime.callback_url import CallbackPolicy, check_callback_url
from captionqc.runtime.http.auth import JwtMode
from captionqc.runtime.media_uri import MediaUriError
from captionqc.runtime.settings import Environment
from captionqc.runtime.tenants import update_tenant
from captionqc.runtime.testing.tls import TlsServer, rebinding_dns, tls_server
from captionqc.schemas import Stage
from captionqc.status import repository as repo
from captionqc.status.service import Incoming, StatusService
from captionqc.status.settings import StatusSettings
from captionqc.status.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    WebhookSender,
    verify_signature,
)

from .helpers import SECRET, crosscheck_completed, failed, new_job_id, requested
from .test_consumer import eventually

ACME_SECRET = "acme-webhook-secret-0123456789"
BETA_SECRET = "beta-webhook-secret-9876543210"
LOCAL_HOOKS = {"callback_allow_loopback": True, "tenant_cache_s": 0.0}


HOOKS_HOST = "hooks.example.test"
PUBLIC_HOOKS = {"callback_allowed_hosts": HOOKS_HOST, "tenant_cache_s": 0.0}


async def _set_tenant(db_url: str, name: str, **changes: Any) -> None:
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await update_tenant(conn, name, **changes)
    finally:
        await engine.dispose()


@pytest.fixture
async def webhook_secrets(db_url: str) -> None:
    """Each tenant signs with its own secret from the registry (the conftest registered acme and beta)."""
    await _set_tenant(db_url, "acme", webhook_secret=ACME_SECRET)
    await _set_tenant(db_url, "beta", webhook_secret=BETA_SECRET)


class Receiver:
    """A tiny webhook receiver on 127.0.0.1 answering the scripted statuses in turn (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append((dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/captionqc"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver([503]) as r:
        yield r


async def project(service: StatusService, *events: Any) -> None:
    await service.project([Incoming(e) for e in events])


async def delivery(service: StatusService, job_id: str) -> Any:
    async with service.sessions() as session:
        return await repo.delivery_state(session, job_id)


@pytest.mark.parametrize("status_app", [LOCAL_HOOKS], indirect=True)
async def test_one_signed_post_retried_after_503_and_never_twice(
    webhook_secrets: None, status_app: Any, app_service: StatusService, receiver: Receiver
) -> None:
    job_id = new_job_id()
    final = crosscheck_completed(job_id)
    await project(app_service, requested(job_id, callback_url=receiver.url), final)

    async def delivered() -> bool:
        row = await delivery(app_service, job_id)
        return row is not None and row.state == "delivered"

    await eventually(delivered, timeout=20)
    assert len(receiver.received) == 2  # the 503, then the accepted retry
    headers, body = receiver.received[-1]
    assert verify_signature(ACME_SECRET.encode(), body, headers[SIGNATURE_HEADER], now=time.time())
    assert not verify_signature(b"another tenant's secret", body, headers[SIGNATURE_HEADER], now=time.time())
    assert not verify_signature(ACME_SECRET.encode(), body, headers[SIGNATURE_HEADER], now=time.time() + 3600)
    assert headers[EVENT_HEADER] == "job.completed"
    assert headers[DELIVERY_HEADER] == job_id
    view = json.loads(body)
    assert view["job_id"] == job_id
    assert view["state"] == "completed"
    assert view["findings_total"] == 2
    row = await delivery(app_service, job_id)
    assert row.attempts == 2
    assert row.last_status == 200

    # The final event redelivered, another final event, and a second replica's sender: nothing more is sent.
    await project(app_service, final, failed(job_id, Stage.CROSSCHECK))
    other_replica = WebhookSender(
        app_service.sessions, status_app.state.status.settings, _client(), status_app.state.status.webhooks._tenants
    )
    assert await other_replica.deliver_pending() == 0
    assert await status_app.state.status.webhooks.deliver_pending() == 0
    time.sleep(0.5)
    assert len(receiver.received) == 2


def _client() -> Any:
    import httpx

    return httpx.AsyncClient()


@pytest.mark.parametrize("status_app", [LOCAL_HOOKS], indirect=True)
async def test_failed_job_is_reported_too_signed_with_its_own_tenants_secret(
    webhook_secrets: None, app_service: StatusService, receiver: Receiver
) -> None:
    receiver.statuses.clear()
    job_id = new_job_id()
    await project(
        app_service, failed(job_id, Stage.ASR, tenant="beta"), requested(job_id, "beta", callback_url=receiver.url)
    )
    await eventually(lambda: _received(receiver, 1), timeout=20)
    headers, body = receiver.received[0]
    assert headers[EVENT_HEADER] == "job.failed"
    assert json.loads(body)["failure"]["reason"] == "no_audio_stream"
    assert verify_signature(BETA_SECRET.encode(), body, headers[SIGNATURE_HEADER], now=time.time())
    assert not verify_signature(ACME_SECRET.encode(), body, headers[SIGNATURE_HEADER], now=time.time())


async def _received(receiver: Receiver, n: int) -> bool:
    return len(receiver.received) >= n


async def _refused_with(service: StatusService, job_id: str) -> str:
    async def refused() -> bool:
        row = await delivery(service, job_id)
        return row is not None and row.state == "refused"

    await eventually(refused, timeout=20)
    row = await delivery(service, job_id)
    return str(row.last_error)


async def test_loopback_callback_is_refused_without_the_opt_in(app_service: StatusService, receiver: Receiver) -> None:
    job_id = new_job_id()
    await project(app_service, requested(job_id, callback_url=receiver.url), crosscheck_completed(job_id))
    assert (await _refused_with(app_service, job_id)).startswith("private_address: ")
    assert receiver.received == []


@pytest.mark.parametrize("status_app", [LOCAL_HOOKS], indirect=True)
@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://2852039166/x", "metadata_host"),
        ("https://user:pass@127.0.0.1/x", "userinfo"),
        ("http://10.1.2.3/x", "private_address"),
        ("https://hooks.example.test/x", "host_not_allowed"),  # allowed at submit once, not any more
    ],
)
async def test_a_refused_delivery_records_the_rule_on_its_row(app_service: StatusService, url: str, rule: str) -> None:
    job_id = new_job_id()
    await project(app_service, requested(job_id, callback_url=url), crosscheck_completed(job_id))
    assert (await _refused_with(app_service, job_id)).startswith(f"{rule}: ")


@pytest.mark.parametrize("status_app", [LOCAL_HOOKS], indirect=True)
async def test_no_webhook_for_a_tenant_not_registered_or_disabled(
    db_url: str, app_service: StatusService, receiver: Receiver
) -> None:
    await _set_tenant(db_url, "beta", enabled=False)
    ghost, disabled = new_job_id(), new_job_id()
    await project(
        app_service, requested(ghost, "ghost", callback_url=receiver.url), crosscheck_completed(ghost, "ghost")
    )
    await project(
        app_service, requested(disabled, "beta", callback_url=receiver.url), crosscheck_completed(disabled, "beta")
    )
    assert (await _refused_with(app_service, ghost)).startswith("unknown_tenant: ")
    assert (await _refused_with(app_service, disabled)).startswith("tenant_disabled: ")
    assert receiver.received == []


@pytest.fixture
def tls_receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TlsServer, list[str]]]:
    """An https receiver for HOOKS_HOST; the name resolves to it once, then inwards. Before the app starts."""
    with tls_server(HOOKS_HOST, tmp_path) as server:
        yield server, rebinding_dns(monkeypatch, HOOKS_HOST, server.ca_file)


@pytest.mark.parametrize("status_app", [PUBLIC_HOOKS], indirect=True)
async def test_webhook_goes_to_the_checked_address_over_tls_for_the_name(
    tls_receiver: tuple[TlsServer, list[str]], webhook_secrets: None, status_app: Any, app_service: StatusService
) -> None:
    server, lookups = tls_receiver
    job_id = new_job_id()
    url = f"https://{HOOKS_HOST}:{server.port}/hooks/captionqc"
    await project(app_service, requested(job_id, callback_url=url), crosscheck_completed(job_id))

    async def delivered() -> bool:
        row = await delivery(app_service, job_id)
        return row is not None and row.state == "delivered"

    await eventually(delivered, timeout=20)
    # Resolved once, when the URL was checked; the second, inward answer was never asked for or used.
    assert lookups == [HOOKS_HOST]
    assert [(s.method, s.path, s.host) for s in server.seen] == [
        ("POST", "/hooks/captionqc", f"{HOOKS_HOST}:{server.port}")
    ]
    assert json.loads(server.seen[0].body)["job_id"] == job_id


def test_settings_take_the_gateways_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTIONQC_STATUS_JWT_SECRET", SECRET)
    monkeypatch.setenv("CAPTIONQC_STATUS_CALLBACK_ALLOWED_HOSTS", "hooks.example.com, B.example.org")
    monkeypatch.setenv("CAPTIONQC_STATUS_CALLBACK_ALLOW_LOOPBACK", "true")
    assert StatusSettings().callback_policy() == CallbackPolicy(
        frozenset({"hooks.example.com", "b.example.org"}), allow_loopback=True
    )
    strict = StatusSettings(
        jwt_secret=SecretStr(SECRET), callback_allowed_hosts=frozenset({"hooks.example.com", "10.1.2.3"})
    )
    for url, rule in [
        ("http://hooks.example.com/x", "scheme_not_allowed"),
        ("https://evil.example.net/x", "host_not_allowed"),
        ("https://user:pw@hooks.example.com/x", "userinfo"),
        ("https://10.1.2.3/x", "private_address"),
        ("https://169.254.169.254/latest", "metadata_host"),
    ]:
        with pytest.raises(MediaUriError) as caught:
            check_callback_url(url, strict.callback_policy())
        assert caught.value.rule == rule, url


def test_loopback_callbacks_are_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="callback_allow_loopback"):
        StatusSettings(
            environment=Environment.PRODUCTION,
            jwt_mode=JwtMode.JWKS,
            jwks_url="https://idp.example.com/jwks",
            jwt_issuer="https://idp.example.com",
            jwt_audience="captionqc",
            callback_allow_loopback=True,
        )
