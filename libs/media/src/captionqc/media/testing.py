"""Test doubles for the outside world the media stages talk to and that has no local stand-in.

Only the Cloud Run admin API is faked: Cloud Run cannot run here. Everything of ours runs for real in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any


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
