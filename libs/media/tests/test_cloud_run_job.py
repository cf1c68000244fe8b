"""Execution mode ``cloud_run_job``, the part the OCR and ASR stages share: the settings rule, the dispatcher
(against a fake of the Cloud Run admin API only: it cannot run here) and the entrypoint's job-id check.
Each stage's tests run its own entrypoint for real."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api_core import exceptions as gexc

from captionqc.media.cloud_run_job import CloudRunJobDispatcher, job_id_env, job_json_key
from captionqc.media.errors import TransientMediaError
from captionqc.media.settings import ExecutionMode, MediaStageSettings
from captionqc.media.stage_runner import execution_main
from captionqc.media.testing import FakeJobsClient, cloud_run_job_settings
from captionqc.runtime.storage import LocalResultStore
from captionqc.runtime.testing.bus import job_event
from captionqc.schemas import JobRequested, Stage


def cloud_settings(tmp_path: Path) -> MediaStageSettings:
    return cloud_run_job_settings(MediaStageSettings, tmp_path / "results", job_name="captionqc-asr-job")


def test_settings_refuse_cloud_run_mode_without_a_job() -> None:
    with pytest.raises(ValueError, match="needs cloud_run_job_name"):
        MediaStageSettings(execution_mode=ExecutionMode.CLOUD_RUN_JOB)


@pytest.mark.parametrize("stage", ["ocr", "asr"])
def test_dispatch_starts_an_execution_carrying_the_job(tmp_path: Path, stage: str) -> None:
    client = FakeJobsClient()
    dispatcher = CloudRunJobDispatcher.from_settings(stage, cloud_settings(tmp_path), client=client)
    job = job_event("gs://captionqc-media/in/clip.mp4").data
    execution = dispatcher.dispatch(job)
    [request] = client.requests
    assert request.name == "projects/captionqc-prod/locations/europe-west1/jobs/captionqc-asr-job"
    assert execution == f"{request.name}/executions/1"
    [override] = request.overrides.container_overrides
    assert [(e.name, e.value) for e in override.env] == [(f"CAPTIONQC_{stage.upper()}_JOB_ID", job.job_id)]
    assert override.args[0] == "--job-uri"
    stored = LocalResultStore(tmp_path / "results").get_json(override.args[1])
    assert JobRequested.model_validate_json(stored) == job
    assert override.args[1].endswith(job_json_key(stage, job))


def test_dispatch_failure_of_the_admin_api_is_transient(tmp_path: Path) -> None:
    client = FakeJobsClient(fail=gexc.ServiceUnavailable("try later"))
    dispatcher = CloudRunJobDispatcher.from_settings("asr", cloud_settings(tmp_path), client=client)
    with pytest.raises(TransientMediaError):
        dispatcher.dispatch(job_event("gs://captionqc-media/clip.mp4").data)


def test_entrypoint_refuses_a_job_id_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalResultStore(tmp_path)
    job = job_event("gs://captionqc-media/clip.mp4").data
    uri = store.put_json(job_json_key("ocr", job), job.model_dump_json().encode())
    monkeypatch.setenv("CAPTIONQC_RESULTS_URI", str(tmp_path))
    monkeypatch.setenv(job_id_env("ocr"), "not-this-job")
    ran: list[JobRequested] = []

    async def run(job: JobRequested, settings: MediaStageSettings, publisher: object) -> None:
        ran.append(job)

    assert execution_main(["--job-uri", uri], Stage.OCR, MediaStageSettings, run) == 2
    assert ran == []
