"""Settings of the status service (env prefix ``CAPTIONQC_STATUS_``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from captionqc.runtime.callback_url import CallbackSettings
from captionqc.runtime.http.auth import AuthSettings
from captionqc.runtime.settings import ServiceSettings


class StatusSettings(ServiceSettings, AuthSettings, CallbackSettings):
    model_config = SettingsConfigDict(env_prefix="CAPTIONQC_STATUS_", extra="ignore", frozen=True)

    service_name: str = "status"
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8084
    # The API takes no bodies (GETs only); anything larger than this is refused before it is read.
    max_body_bytes: Annotated[int, Field(ge=0, le=1024 * 1024)] = 16 * 1024
    # Off: the app serves the API only (e.g. a read-only replica); the consumer runs elsewhere.
    consume: bool = True

    # -- consuming -------------------------------------------------------------------------------------------
    max_messages_per_subscription: Annotated[int, Field(ge=1, le=1000)] = 64
    # Events arriving together are projected in one transaction (group commit): at most this many, waiting at
    # most this long for company. Each message is still acked only after its own batch has committed.
    projection_batch_size: Annotated[int, Field(ge=1, le=1000)] = 200
    projection_batch_wait_s: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    results_uri: str | None = Field(
        default="var/results",
        description="Where claim-checked OCR results live (a folder or gs://bucket/prefix); unset → captions of "
        "claim-checked results are recorded as unavailable.",
    )

    # -- deadline sweeper ------------------------------------------------------------------------------------
    stage_deadline_s: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 900.0
    sweep_interval_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    sweep_batch: Annotated[int, Field(ge=1, le=10_000)] = 100

    # -- query API ---------------------------------------------------------------------------------------------
    stream_poll_interval_s: Annotated[float, Field(gt=0, le=30)] = 0.5
    stream_max_s: Annotated[float, Field(gt=0, le=24 * 3600)] = 3600.0
    stream_heartbeat_s: Annotated[float, Field(gt=0, le=300)] = 15.0

    # -- webhooks ----------------------------------------------------------------------------------------------
    # Where they may go: `CallbackSettings` (callback_allowed_hosts, callback_allow_loopback), the gateway's format.
    # How they are signed: each tenant's webhook_secret in the tenant registry.
    webhook_timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    webhook_max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    webhook_backoff_initial_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    webhook_backoff_max_s: Annotated[float, Field(ge=0, le=600)] = 30.0
    webhook_poll_interval_s: Annotated[float, Field(gt=0, le=300)] = 2.0
    # A sender that claimed a delivery and died is replaced after this long (at-least-once, not exactly-once).
    webhook_lease_s: Annotated[float, Field(gt=0, le=3600)] = 300.0
