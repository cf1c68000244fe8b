"""End to end: POST a sample clip → OCR ∥ ASR → cross-check → status, on real processes and real engines."""

from __future__ import annotations

import json
import signal
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from captionqc.cli.client import CaptionqcClient
from captionqc.devstack.stack import PROJECT, Stack
from captionqc.runtime.pubsub import topic_path
from captionqc.schemas import EventType, JobRequested, MediaRef, new_event, to_pubsub
from captionqc.schemas.api import JobCreate
from captionqc.schemas.status_api import JobState, JobView

from .conftest import SAMPLES, truth

pytestmark = pytest.mark.slow
CLIP = "news_council.mp4"


def wait_final(client: CaptionqcClient, job_id: str, timeout_s: float = 240.0) -> JobView:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            view = client.job(job_id)
            if view.state in (JobState.COMPLETED, JobState.FAILED):
                return view
        except Exception:  # not projected yet (404) or a brief hiccup
            view = None
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not finished after {timeout_s} s (last view: {view})")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def client(stack: Stack) -> CaptionqcClient:
    return CaptionqcClient(stack.gateway_url, stack.status_url, stack.token(tenant="e2e"))


@pytest.fixture(scope="module")
def completed_job(stack: Stack, client: CaptionqcClient) -> JobView:
    accepted = client.submit(JobCreate(media_uri=stack.media_uri(SAMPLES / CLIP, tenant="e2e")))
    view = wait_final(client, accepted.job_id)
    assert view.state is JobState.COMPLETED, view.failure
    return view


def test_findings_contain_the_detectable_typos(client: CaptionqcClient, completed_job: JobView) -> None:
    found = client.findings(completed_job.job_id).findings
    expected = [
        (typo["displayed"].lower().strip(".,"), cap["start_s"], cap["end_s"])
        for cap in truth(CLIP)["captions"]
        for typo in cap["typos"]
    ]
    hits = 0
    for word, start, end in expected:
        if any(f.word.lower().strip(".,") == word and f.start_s <= end + 1.0 and f.end_s >= start - 1.0 for f in found):
            hits += 1
    # OCR and ASR are real engines: most, not necessarily all, injected typos are detectable end to end.
    assert hits / len(expected) >= 0.7, (hits, len(expected), [(f.word, f.kind.value) for f in found])
    assert completed_job.finding_counts


def test_one_trace_covers_every_service(stack: Stack, completed_job: JobView) -> None:
    assert completed_job.trace_id
    deadline = time.monotonic() + 20
    services: set[str] = set()
    while time.monotonic() < deadline:
        spans = [json.loads(line) for line in stack.trace_file.read_text().splitlines() if line.strip()]
        services = {s["service"] for s in spans if s["trace_id"] == completed_job.trace_id}
        if {"gateway", "ocr", "asr", "crosscheck", "status"} <= services:
            break
        time.sleep(0.5)
    assert {"gateway", "ocr", "asr", "crosscheck", "status"} <= services
    # Every span of the trace hangs off another span of it, except the one root (the POST).
    tree = [s for s in spans if s["trace_id"] == completed_job.trace_id]
    ids = {s["span_id"] for s in tree}
    roots = [s for s in tree if s["parent_span_id"] not in ids]
    assert len(roots) == 1
    assert roots[0]["service"] == "gateway"


def publish_job_requested(stack: Stack, job_id: str, tenant: str, *, times: int = 1) -> None:
    event = new_event(
        EventType.JOB_REQUESTED,
        JobRequested(
            job_id=job_id,
            tenant=tenant,
            media=MediaRef(uri=stack.media_uri(SAMPLES / "news_weather.mp4", tenant=tenant)),
            requested_at=datetime.now(UTC),
        ),
        source="//upstream/broadcast-system",
    )
    data, attributes = to_pubsub(event)
    publisher = pubsub_v1.PublisherClient()
    try:
        for _ in range(times):
            publisher.publish(topic_path(PROJECT, "jobs"), data, **attributes).result(timeout=10)
    finally:
        publisher.stop()


def test_same_job_published_twice_gives_one_set_of_findings(stack: Stack, client: CaptionqcClient) -> None:
    job_id = str(uuid.uuid4())
    publish_job_requested(stack, job_id, "e2e", times=2)
    view = wait_final(client, job_id)
    assert view.state is JobState.COMPLETED, view.failure
    time.sleep(3)  # let any duplicate outcome arrive
    events = httpx.get(
        f"{stack.status_url}/v1/jobs/{job_id}/events", headers={"Authorization": f"Bearer {client.token}"}
    ).json()["events"]
    completed = [e for e in events if e["type"] == EventType.CROSSCHECK_COMPLETED.value]
    assert len(completed) == 1
    findings = client.findings(job_id).findings
    assert len({f.id for f in findings}) == len(findings)


def test_worker_killed_mid_job_still_completes_once(stack: Stack, client: CaptionqcClient) -> None:
    accepted = client.submit(JobCreate(media_uri=stack.media_uri(SAMPLES / "news_sports.mp4", tenant="e2e")))
    # Kill the OCR worker (the slower stage) as soon as it is working on the job.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.job(accepted.job_id).stages.ocr.state.value == "running":
                break
        except Exception:
            pass
        time.sleep(0.2)
    stack.kill_service("ocr", signal.SIGKILL)
    stack.restart_service("ocr")
    view = wait_final(client, accepted.job_id, timeout_s=300)
    assert view.state is JobState.COMPLETED, view.failure
    events = httpx.get(
        f"{stack.status_url}/v1/jobs/{accepted.job_id}/events", headers={"Authorization": f"Bearer {client.token}"}
    ).json()["events"]
    assert len([e for e in events if e["type"] == EventType.CROSSCHECK_COMPLETED.value]) == 1
    assert len([e for e in events if e["type"] == EventType.OCR_COMPLETED.value]) == 1


@pytest.mark.parametrize(
    ("data", "attributes"),
    [
        (b"{not json", {"ce-type": "captionqc.job.requested"}),
        (b"{}", {"ce-type": "captionqc.job.exploded"}),
        (b'{"schema_version": 9}', {"ce-type": "captionqc.job.requested"}),
    ],
)
def test_malformed_event_is_dead_lettered_and_next_job_completes(
    stack: Stack, client: CaptionqcClient, data: bytes, attributes: dict[str, str]
) -> None:
    bad_job = str(uuid.uuid4())
    base = {"ce-id": str(uuid.uuid4()), "ce-source": "//upstream", "ce-specversion": "1.0", "ce-subject": bad_job}
    publisher = pubsub_v1.PublisherClient()
    try:
        publisher.publish(topic_path(PROJECT, "jobs"), data, **base, **attributes).result(timeout=10)
    finally:
        publisher.stop()
    # It lands on the dead-letter topic (forwarded by each consumer that could not decode it) …
    deadline = time.monotonic() + 30
    dead: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = stack.emulator.state(project=PROJECT)
        dead = next(s for s in state["subscriptions"] if s["name"].endswith("/status-dead-letter"))
        if dead["delivered"] >= 1:
            break
        time.sleep(0.3)
    assert dead["delivered"] >= 1
    # … and the next good job still completes.
    good_job = str(uuid.uuid4())
    publish_job_requested(stack, good_job, "e2e")
    assert wait_final(client, good_job).state is JobState.COMPLETED
