"""Test support for the media stages' Cloud Run Job mode: its settings, and the one outside service it fakes.

Only the Cloud Run admin API is faked: Cloud Run cannot run here. Everything of ours runs for real in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

from captionqc.media.settings import ExecutionMode, MediaStageSettings

SettingsT = TypeVar("SettingsT", bound=MediaStageSettings)


def cloud_run_job_settings(settings_class: type[SettingsT], results: Path, *, job_name: str) -> SettingsT:
    """A stage's settings in ``cloud_run_job`` mode, with its results (and stored jobs) under ``results``."""
    return settings_class(
        execution_mode=ExecutionMode.CLOUD_RUN_JOB,
        cloud_run_job_name=job_name,
        cloud_run_region="europe-west1",
        gcp_project="captionqc-prod",
        results_uri=str(results),
    )


@dataclass
class FakeJobsClient:
    """Records `run_job` requests as the Cloud Run admin API would receive them; ``fail`` is raised instead."""

    fail: Exception | None = None
    requests: list[Any] = field(default_factory=list)

    def run_job(self, request: Any) -> SimpleNamespace:
        if self.fail is not None:
            raise self.fail
        self.requests.append(request)
        # A long-running operation whose metadata names the started execution.
        return SimpleNamespace(metadata=SimpleNamespace(name=f"{request.name}/executions/{len(self.requests)}"))
