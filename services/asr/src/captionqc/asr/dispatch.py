"""Execution mode ``cloud_run_job`` for the ASR stage: the shared dispatcher of `captionqc.media.cloud_run_job`,
bound to this stage (its job-id variable, its key prefix, ``python -m captionqc.asr.job``)."""

from __future__ import annotations

from captionqc.asr.settings import AsrSettings
from captionqc.media import cloud_run_job
from captionqc.media.cloud_run_job import CloudRunJobDispatcher, JobDispatcher, JobsClient
from captionqc.schemas import JobRequested

STAGE = "asr"
JOB_ID_ENV = cloud_run_job.job_id_env(STAGE)

__all__ = ["JOB_ID_ENV", "CloudRunJobDispatcher", "JobDispatcher", "dispatcher_for", "job_json_key"]


def job_json_key(job: JobRequested) -> str:
    return cloud_run_job.job_json_key(STAGE, job)


def dispatcher_for(settings: AsrSettings, *, client: JobsClient | None = None) -> CloudRunJobDispatcher:
    return CloudRunJobDispatcher.from_settings(STAGE, settings, client=client)
