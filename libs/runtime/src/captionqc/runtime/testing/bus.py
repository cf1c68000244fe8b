"""Test helpers for reading what landed on the real Pub/Sub emulator, shared by every package's tests."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

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


def pull_messages(project: str, subscription: str, *, expect: int, timeout: float = 15.0) -> list[Any]:
    """Pull (and ack) raw messages until ``expect`` arrived or ``timeout`` passed; blocking (run it on a thread)."""
    subscriber = pubsub_v1.SubscriberClient()
    path = subscription_path(project, subscription)
    got: list[Any] = []
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
                got.extend(m.message for m in resp.received_messages)
    finally:
        subscriber.close()
    return got


def pull_events(project: str, subscription: str, *, expect: int, timeout: float) -> list[CloudEvent[Any]]:
    """Like `pull_messages`, decoded into typed events."""
    messages = pull_messages(project, subscription, expect=expect, timeout=timeout)
    return [from_pubsub(m.data, dict(m.attributes)) for m in messages]
