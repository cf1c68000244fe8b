"""A small client of the public HTTP API: the gateway (submit) and the status service (read, stream)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from captionqc.schemas.api import JobAccepted, JobCreate
from captionqc.schemas.status_api import JobFindings, JobView, StreamEventName


class ApiError(Exception):
    """An error answer from the API, in its one error shape."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status}: {message}")


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        raise ApiError(response.status_code, body)
    return response


@dataclass
class CaptionqcClient:
    gateway_url: str
    status_url: str
    token: str
    timeout_s: float = 30.0

    def _client(self, base: str) -> httpx.Client:
        return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {self.token}"}, timeout=self.timeout_s)

    def submit(self, job: JobCreate, *, idempotency_key: str | None = None) -> JobAccepted:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        with self._client(self.gateway_url) as client:
            response = _check(client.post("/v1/jobs", json=job.model_dump(mode="json"), headers=headers))
        return JobAccepted.model_validate_json(response.content)

    def job(self, job_id: str) -> JobView:
        with self._client(self.status_url) as client:
            return JobView.model_validate_json(_check(client.get(f"/v1/jobs/{job_id}")).content)

    def findings(self, job_id: str) -> JobFindings:
        with self._client(self.status_url) as client:
            return JobFindings.model_validate_json(_check(client.get(f"/v1/jobs/{job_id}/findings")).content)

    def findings_as(self, job_id: str, fmt: str) -> str:
        with self._client(self.status_url) as client:
            return _check(client.get(f"/v1/jobs/{job_id}/findings", params={"format": fmt})).text

    def wait_visible(self, job_id: str, *, timeout_s: float = 30.0) -> JobView:
        """The job as soon as the status service has projected it: right after a submit it may not have yet
        (the gateway answers before the event has travelled), so a 404 is retried for a bounded time."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.job(job_id)
            except ApiError as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(0.25)

    def stream(self, job_id: str, *, timeout_s: float = 900.0) -> Iterator[tuple[StreamEventName, JobView]]:
        """Server-Sent Events of the job until its final state (or the stream ends)."""
        self.wait_visible(job_id)
        timeout = httpx.Timeout(10.0, read=timeout_s)
        with (
            httpx.Client(
                base_url=self.status_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=timeout
            ) as client,
            client.stream("GET", f"/v1/jobs/{job_id}/stream", headers={"Accept": "text/event-stream"}) as response,
        ):
            if response.status_code >= 400:
                response.read()
                _check(response)
            name = StreamEventName.PROGRESS
            data: list[str] = []
            for line in response.iter_lines():
                if line.startswith("event:"):
                    name = StreamEventName(line.split(":", 1)[1].strip())
                elif line.startswith("data:"):
                    data.append(line.split(":", 1)[1].strip())
                elif not line and data:
                    yield name, JobView.model_validate_json("\n".join(data))
                    if name is StreamEventName.FINAL:
                        return
                    data = []
                    name = StreamEventName.PROGRESS


def pretty_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=str)
