"""Settings every media stage (OCR, ASR) shares: where media may come from, where oversized results go, how often
progress is reported, and whether jobs run in the consumer or as Cloud Run Job executions. Each stage subclasses
it with its own ``env_prefix`` (``CAPTIONQC_OCR_``, ``CAPTIONQC_ASR_``)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, model_validator

from captionqc.runtime.media_uri import MediaUriPolicy
from captionqc.runtime.settings import ServiceSettings


class ExecutionMode(StrEnum):
    INLINE = "inline"
    CLOUD_RUN_JOB = "cloud_run_job"


class MediaStageSettings(ServiceSettings):
    # Media access (the same policy as the gateway's).
    media_root: Path | None = Field(default=None, description="file:// media is allowed only under this folder.")
    allowed_https_hosts: frozenset[str] = frozenset()
    media_download_timeout_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 300.0
    media_temp_dir: Path | None = None

    results_uri: str = Field(
        default="var/results",
        description="Where oversized results go: a local folder, file://… or gs://bucket/prefix.",
    )
    # Pub/Sub takes 10 MB per message; a result over this travels by claim check (stored, its URI in the event).
    inline_result_limit_bytes: Annotated[int, Field(ge=1024, le=9_000_000)] = 1_000_000
    progress_interval_s: Annotated[float, Field(gt=0.0)] = 2.0

    # Execution. Jobs handled at once by one worker: engines are not shared between jobs concurrently, so more
    # cores are used through the stage's own parallelism, not through this.
    execution_mode: ExecutionMode = ExecutionMode.INLINE
    max_lease_s: Annotated[float, Field(ge=60.0, le=24 * 3600.0)] = Field(
        default=4 * 3600.0,
        description="How long one inline job may hold its message (the client extends the lease meanwhile); "
        "work that may take longer belongs in execution_mode=cloud_run_job.",
    )
    worker_threads: Annotated[int, Field(ge=1, le=64)] = 1
    # Jobs leased at once (worker_threads of them run, the others wait, round-robin between tenants): enough that
    # another tenant's job is seen while one tenant's backlog is being worked through. Waiting counts towards
    # max_lease_s, and a replica's leased jobs are not available to other replicas, so keep it modest.
    max_leased_jobs: Annotated[int, Field(ge=1, le=256)] = 16
    cloud_run_job_name: str | None = Field(default=None, description="The Cloud Run Job started per job.")
    cloud_run_region: str | None = None

    @model_validator(mode="after")
    def _leases_cover_the_threads(self) -> Self:
        if self.max_leased_jobs < self.worker_threads:
            raise ValueError("max_leased_jobs must be at least worker_threads")
        return self

    @model_validator(mode="after")
    def _cloud_run_job_needs_a_name(self) -> Self:
        if self.execution_mode is ExecutionMode.CLOUD_RUN_JOB and not (
            self.cloud_run_job_name and self.cloud_run_region
        ):
            raise ValueError("execution_mode=cloud_run_job needs cloud_run_job_name and cloud_run_region")
        return self

    def media_policy(self) -> MediaUriPolicy:
        return MediaUriPolicy(media_root=self.media_root, allowed_https_hosts=self.allowed_https_hosts)
