"""Builders shared by the runtime tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from captionqc.schemas import CloudEvent, EventType, JobRequested, MediaRef, new_event


def job_requested(job_id: str | None = None, tenant: str = "acme") -> CloudEvent[Any]:
    payload = JobRequested(
        job_id=job_id or str(uuid.uuid4()),
        tenant=tenant,
        media=MediaRef(uri="gs://media-bucket/clip.mp4"),
        requested_at=datetime.now(UTC),
    )
    return new_event(EventType.JOB_REQUESTED, payload, source="//captionqc/test")
