"""The settings base every service's one settings class derives from."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev-secret", "local-dev-secret"})


class Environment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    PRODUCTION = "production"


class TraceExporter(StrEnum):
    GCP_TRACE = "gcp_trace"
    OTLP = "otlp"
    CONSOLE = "console"
    FILE = "file"
    NONE = "none"


class ServiceSettings(BaseSettings):
    """Shared settings. Each service subclasses it with its own ``env_prefix`` (e.g. ``CAPTIONQC_OCR_``).

    Tests build ``Settings(...)`` directly; nothing is read from the environment at import time.
    """

    model_config = SettingsConfigDict(env_prefix="CAPTIONQC_", extra="ignore", frozen=True)

    service_name: str = "captionqc"
    environment: Environment = Environment.LOCAL
    gcp_project: str = Field(default="captionqc-local", description="GCP project of the Pub/Sub topics and traces.")
    # Unset → the official client talks to Google; set (host:port) → to the emulator. Read by the client itself
    # from the process environment, so it is mirrored here only to be visible in /readyz and logs.
    pubsub_emulator_host: str | None = None
    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql+asyncpg://… ; unset locally → the embedded server of `make run`.",
    )
    db_pool_size: Annotated[int, Field(ge=1, le=100)] = 5
    db_max_overflow: Annotated[int, Field(ge=0, le=100)] = 0
    log_level: str = "INFO"
    trace_exporter: TraceExporter = TraceExporter.NONE
    trace_file: Path | None = Field(default=None, description="JSON-lines span file for the `file` exporter.")
    otlp_endpoint: str | None = None
    trace_sample_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    health_host: str = "127.0.0.1"
    health_port: Annotated[int, Field(ge=0, le=65535)] = 0
    # Cloud Run kills an instance 10 s after SIGTERM: in-flight work gets 8 s, and 2 s remain to nack the rest,
    # flush the outbox and close, so nothing waits for an ack deadline to come back.
    shutdown_grace_s: Annotated[float, Field(gt=0, le=600)] = 8.0
    # The largest message (data + attribute keys and values) we publish or process. Pub/Sub accepts 10 MB, but a
    # subscriber's gRPC channel receives 4 MiB by default: below that, whatever we publish any client can read.
    # A larger incoming message is dead-lettered truncated (see the consumer runner), never retried.
    max_message_bytes: Annotated[int, Field(ge=64 * 1024, le=10_000_000)] = 3 * 1024 * 1024

    def secrets_to_check(self) -> dict[str, SecretStr | None]:
        """Secrets that must not be placeholders in production; services extend this."""
        return {}

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> ServiceSettings:
        if self.environment is Environment.PRODUCTION:
            bad = [
                name
                for name, value in self.secrets_to_check().items()
                if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
            ]
            if bad:
                raise ValueError(f"refusing to start in production with placeholder secrets: {', '.join(bad)}")
        return self

    def database_dsn(self) -> str:
        if self.database_url is None:
            raise RuntimeError("database_url is not set (set CAPTIONQC_DATABASE_URL or use `make run`)")
        return self.database_url.get_secret_value()
