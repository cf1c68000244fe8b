"""Helpers for the tests that run the ASR worker against the real Pub/Sub emulator."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from captionqc.runtime.pubsub import subscription_path
from captionqc.schemas import (
    CloudEvent,
    EventType,
    JobOptions,
    JobRequested,
    MediaRef,
    RegionHint,
    from_pubsub,
    new_event,
)


def job_event(uri: str, *, region: RegionHint | None = None, job_id: str | None = None) -> CloudEvent[JobRequested]:
    job = JobRequested(
        job_id=job_id or str(uuid.uuid4()),
        tenant="acme",
        media=MediaRef(uri=uri),
        options=JobOptions(caption_region=region),
        requested_at=datetime.now(UTC),
    )
    return new_event(EventType.JOB_REQUESTED, job, source="//captionqc/test")


def pull_events(project: str, subscription: str, *, expect: int, timeout: float) -> list[CloudEvent[Any]]:
    """Pull (and ack) until ``expect`` events arrived or ``timeout`` passed; runs on a thread."""
    subscriber = pubsub_v1.SubscriberClient()
    path = subscription_path(project, subscription)
    got: list[CloudEvent[Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expect and time.monotonic() < deadline:
            try:
                resp = subscriber.pull(request={"subscription": path, "max_messages": 50}, timeout=2)
            except gexc.DeadlineExceeded:
                continue
            if resp.received_messages:
                subscriber.acknowledge(
                    request={"subscription": path, "ack_ids": [m.ack_id for m in resp.received_messages]}
                )
                got.extend(from_pubsub(m.message.data, dict(m.message.attributes)) for m in resp.received_messages)
    finally:
        subscriber.close()
    return got
