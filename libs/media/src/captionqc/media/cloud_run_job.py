"""Execution mode ``cloud_run_job`` of the OCR and ASR stages: start a Cloud Run Job execution for a job instead of
processing it in the consumer.

The consumer stores the job as JSON in the result store (a claim check, so a large glossary never hits argument
size limits), starts an execution of the configured job with container overrides carrying the job id and that
URI, and acks. The execution runs ``python -m captionqc.<stage>.job`` — the same stage code — and publishes the
result itself. A redelivered ``job.requested`` may start a second execution; its result carries the same ce-id,
so downstream drops the duplicate.

Cloud Run cannot run here: the dispatcher is tested against a fake of the admin API client only.
"""

from __future__ import annotations

from typing import Any, Protocol

from captionqc.media.errors import TransientMediaError
from captionqc.media.settings import MediaStageSettings
from captionqc.runtime.storage import ResultStore, result_store_from_uri
from captionqc.schemas import JobRequested


def job_id_env(stage: str) -> str:
    """The environment variable that carries the job id into the execution (checked by the entrypoint)."""
    return f"CAPTIONQC_{stage.upper()}_JOB_ID"


class JobDispatcher(Protocol):
    def dispatch(self, job: JobRequested) -> str:
        """Start processing ``job`` elsewhere; return an identifier of the started execution."""
        ...


class JobsClient(Protocol):
    """The slice of `google.cloud.run_v2.JobsClient` used here."""

    def run_job(self, request: Any) -> Any: ...


def job_json_key(stage: str, job: JobRequested) -> str:
    return f"{stage}/{job.tenant}/{job.job_id}/job.json"


class CloudRunJobDispatcher:
    def __init__(self, *, stage: str, job_name: str, store: ResultStore, client: JobsClient | None = None) -> None:
        self.stage = stage
        self.job_name = job_name
        self.store = store
        self._client = client

    @classmethod
    def from_settings(
        cls, stage: str, settings: MediaStageSettings, *, client: JobsClient | None = None
    ) -> CloudRunJobDispatcher:
        if not (settings.cloud_run_job_name and settings.cloud_run_region):
            raise ValueError("cloud_run_job mode needs cloud_run_job_name and cloud_run_region")
        name = (
            f"projects/{settings.gcp_project}/locations/{settings.cloud_run_region}/jobs/{settings.cloud_run_job_name}"
        )
        return cls(stage=stage, job_name=name, store=result_store_from_uri(settings.results_uri), client=client)

    def _jobs(self) -> JobsClient:
        if self._client is None:
            from google.cloud import run_v2

            self._client = run_v2.JobsClient()
        return self._client

    def dispatch(self, job: JobRequested) -> str:
        from google.api_core import exceptions as gexc
        from google.cloud import run_v2

        job_uri = self.store.put_json(job_json_key(self.stage, job), job.model_dump_json().encode())
        overrides = run_v2.RunJobRequest.Overrides(
            container_overrides=[
                run_v2.RunJobRequest.Overrides.ContainerOverride(
                    args=["--job-uri", job_uri],
                    env=[run_v2.EnvVar(name=job_id_env(self.stage), value=job.job_id)],
                )
            ]
        )
        request = run_v2.RunJobRequest(name=self.job_name, overrides=overrides)
        try:
            # run_job returns a long-running operation at once; waiting for it would hold the message for the
            # whole execution, which is exactly what this mode avoids.
            operation = self._jobs().run_job(request=request)
        except (gexc.ServerError, gexc.TooManyRequests, gexc.RetryError) as exc:
            raise TransientMediaError(f"Cloud Run did not start the job execution: {exc}") from exc
        metadata = getattr(operation, "metadata", None)
        return str(getattr(metadata, "name", "") or self.job_name)
