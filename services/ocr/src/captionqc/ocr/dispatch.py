"""Execution mode ``cloud_run_job`` for the OCR stage: the shared dispatcher of `captionqc.media.cloud_run_job`,
bound to this stage (its job-id variable, its key prefix, ``python -m captionqc.ocr.job``)."""

from __future__ import annotations

from captionqc.media import cloud_run_job
from captionqc.media.cloud_run_job import CloudRunJobDispatcher, JobDispatcher, JobsClient
from captionqc.ocr.settings import OcrSettings
from captionqc.schemas import JobRequested

STAGE = "ocr"
JOB_ID_ENV = cloud_run_job.job_id_env(STAGE)

__all__ = ["JOB_ID_ENV", "CloudRunJobDispatcher", "JobDispatcher", "dispatcher_for", "job_json_key"]


def job_json_key(job: JobRequested) -> str:
    return cloud_run_job.job_json_key(STAGE, job)


def dispatcher_for(settings: OcrSettings, *, client: JobsClient | None = None) -> CloudRunJobDispatcher:
    return CloudRunJobDispatcher.from_settings(STAGE, settings, client=client)
