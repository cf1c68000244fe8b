"""The gateway's one settings class (env prefix ``CAPTIONQC_GATEWAY_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from captionqc.runtime.callback_url import CallbackSettings, parse_host_list
from captionqc.runtime.http.auth import AuthSettings
from captionqc.runtime.media_uri import MediaUriPolicy
from captionqc.runtime.settings import ServiceSettings

HostList = Annotated[frozenset[str], NoDecode]


class GatewaySettings(ServiceSettings, AuthSettings, CallbackSettings):
    model_config = SettingsConfigDict(env_prefix="CAPTIONQC_GATEWAY_", extra="ignore", frozen=True)

    service_name: str = "gateway"
    event_source: str = "//captionqc/gateway"
    status_base_url: str = Field(
        default="http://127.0.0.1:8081", description="Base URL of the status service, for `links.status`/`Location`."
    )
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 64 * 1024
    media_root: Path | None = Field(default=None, description="Root for file:// media; unset → file:// refused.")
    allowed_https_hosts: HostList = Field(
        default=frozenset(), description="Hosts https:// media may come from (comma-separated)."
    )
    relay_poll_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    idempotency_key_ttl_s: Annotated[float, Field(gt=0, le=30 * 86400)] = Field(
        default=86400.0, description="How long an Idempotency-Key is remembered; after that it may be used again."
    )
    publisher_max_in_flight: Annotated[int, Field(ge=1, le=10000)] = 1000
    consume: bool = Field(
        default=True,
        description="Consume gateway-intake (upstream job requests) and gateway-findings (finished jobs); "
        "off: HTTP only, and jobs count as in flight until in_flight_stale_after_s.",
    )
    intake_max_messages: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=8, description="Intake messages leased and handled at once per process."
    )
    in_flight_stale_after_s: Annotated[float, Field(ge=60, le=7 * 86400)] = Field(
        default=7200.0,
        description="A job whose final event never came back (lost to a dead letter) stops counting as in flight "
        "this long after it was accepted.",
    )
    quota_retry_after_s: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=30, description="Retry-After of a 429 for jobs in flight (the per-minute quota computes its own)."
    )

    @field_validator("allowed_https_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return parse_host_list(value)

    def secrets_to_check(self) -> dict[str, SecretStr | None]:
        return {"jwt_secret": self.jwt_secret}

    def media_policy(self) -> MediaUriPolicy:
        return MediaUriPolicy(media_root=self.media_root, allowed_https_hosts=self.allowed_https_hosts)
