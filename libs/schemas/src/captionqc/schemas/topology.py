"""The Pub/Sub topology, declared once: topics, each service's subscriptions, and their delivery policies.

`captionqc.runtime.topology_apply` applies it to the emulator or a GCP project; the Terraform in
`infra/terraform` declares the same thing and a test keeps the two equal.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from captionqc.schemas.base import Contract
from captionqc.schemas.events import EventType


class TopicName:
    # The one topic outside publishers may write to: authenticated job requests from upstream systems.
    INTAKE = "intake"
    # Internal topics: only their producer's service account may publish (see EVENT_TOPICS and the Terraform).
    JOBS = "jobs"
    OCR_RESULTS = "ocr-results"
    ASR_RESULTS = "asr-results"
    FINDINGS = "findings"
    PROGRESS = "progress"
    DEAD_LETTER = "dead-letter"


class RetryPolicy(Contract):
    minimum_backoff_s: Annotated[int, Field(ge=0, le=600)]
    maximum_backoff_s: Annotated[int, Field(ge=0, le=600)]


class DeadLetterPolicy(Contract):
    topic: str
    max_delivery_attempts: Annotated[int, Field(ge=5, le=100)]


class TopicSpec(Contract):
    name: str
    message_retention_s: Annotated[int, Field(ge=600, le=31 * 24 * 3600)]


class SubscriptionSpec(Contract):
    name: str
    topic: str
    consumer: str
    ack_deadline_s: Annotated[int, Field(ge=10, le=600)]
    message_retention_s: Annotated[int, Field(ge=600, le=7 * 24 * 3600)]
    retry: RetryPolicy
    dead_letter: DeadLetterPolicy | None


class Topology(Contract):
    topics: list[TopicSpec]
    subscriptions: list[SubscriptionSpec]

    def topic(self, name: str) -> TopicSpec:
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise KeyError(name)

    def subscription(self, name: str) -> SubscriptionSpec:
        for sub in self.subscriptions:
            if sub.name == name:
                return sub
        raise KeyError(name)

    def subscriptions_of(self, consumer: str) -> list[SubscriptionSpec]:
        return [s for s in self.subscriptions if s.consumer == consumer]


# Where each event type is published. Progress has its own topic so that the cross-check, which only needs
# results, is not woken by every progress tick of a long OCR or ASR run.
EVENT_TOPICS: dict[EventType, str] = {
    EventType.JOB_REQUESTED: TopicName.JOBS,
    EventType.OCR_PROGRESS: TopicName.PROGRESS,
    EventType.ASR_PROGRESS: TopicName.PROGRESS,
    EventType.OCR_COMPLETED: TopicName.OCR_RESULTS,
    EventType.OCR_FAILED: TopicName.OCR_RESULTS,
    EventType.ASR_COMPLETED: TopicName.ASR_RESULTS,
    EventType.ASR_FAILED: TopicName.ASR_RESULTS,
    EventType.CROSSCHECK_COMPLETED: TopicName.FINDINGS,
    EventType.CROSSCHECK_FAILED: TopicName.FINDINGS,
}

# What upstream systems publish on the intake topic: a job request, authenticated by the gateway before it
# becomes the internal ``job.requested`` on ``jobs``.
INTAKE_TYPES: frozenset[EventType] = frozenset({EventType.JOB_REQUESTED})

_DAY = 24 * 3600
# Retries back off from 2 s to 2 min; after 5 attempts a message is dead-lettered rather than retried forever.
_RETRY = RetryPolicy(minimum_backoff_s=2, maximum_backoff_s=120)
_DLQ = DeadLetterPolicy(topic=TopicName.DEAD_LETTER, max_delivery_attempts=5)


def _sub(
    name: str, topic: str, consumer: str, *, ack_deadline_s: int = 60, dead_letter: bool = True
) -> SubscriptionSpec:
    return SubscriptionSpec(
        name=name,
        topic=topic,
        consumer=consumer,
        ack_deadline_s=ack_deadline_s,
        message_retention_s=7 * _DAY,
        retry=_RETRY,
        dead_letter=_DLQ if dead_letter else None,
    )


TOPOLOGY = Topology(
    topics=[
        TopicSpec(name=TopicName.INTAKE, message_retention_s=7 * _DAY),
        TopicSpec(name=TopicName.JOBS, message_retention_s=7 * _DAY),
        TopicSpec(name=TopicName.OCR_RESULTS, message_retention_s=7 * _DAY),
        TopicSpec(name=TopicName.ASR_RESULTS, message_retention_s=7 * _DAY),
        TopicSpec(name=TopicName.FINDINGS, message_retention_s=7 * _DAY),
        TopicSpec(name=TopicName.PROGRESS, message_retention_s=1 * _DAY),
        TopicSpec(name=TopicName.DEAD_LETTER, message_retention_s=31 * _DAY),
    ],
    subscriptions=[
        # The gateway authenticates each intake message and turns it into a job, as POST /v1/jobs does.
        _sub("gateway-intake", TopicName.INTAKE, "gateway"),
        # ... and learns from the findings topic which jobs have finished, for the jobs-in-flight quota.
        _sub("gateway-findings", TopicName.FINDINGS, "gateway"),
        # OCR and ASR each have their own subscription to the jobs topic: both get every job, in parallel.
        # Their handlers run for minutes; the client keeps extending the lease, so the deadline stays short
        # and a crashed worker's job is handed on quickly.
        _sub("ocr-jobs", TopicName.JOBS, "ocr"),
        _sub("asr-jobs", TopicName.JOBS, "asr"),
        # The cross-check needs the job's options (glossary, NG words, checks) as well as both results.
        _sub("crosscheck-jobs", TopicName.JOBS, "crosscheck"),
        _sub("crosscheck-ocr-results", TopicName.OCR_RESULTS, "crosscheck"),
        _sub("crosscheck-asr-results", TopicName.ASR_RESULTS, "crosscheck"),
        _sub("status-jobs", TopicName.JOBS, "status"),
        _sub("status-ocr-results", TopicName.OCR_RESULTS, "status"),
        _sub("status-asr-results", TopicName.ASR_RESULTS, "status"),
        _sub("status-findings", TopicName.FINDINGS, "status"),
        _sub("status-progress", TopicName.PROGRESS, "status"),
        # The dead-letter topic's own subscription has no dead-letter policy: there is nowhere further to go.
        _sub("status-dead-letter", TopicName.DEAD_LETTER, "status", dead_letter=False),
    ],
)


def accepted_types(subscription: str, topology: Topology = TOPOLOGY) -> frozenset[EventType]:
    """The event types a subscription may carry: those its topic's producers publish. Anything else on it is a
    forgery or a bug, and is dead-lettered as ``unexpected_type`` without reaching a handler."""
    topic = topology.subscription(subscription).topic
    if topic == TopicName.INTAKE:
        return INTAKE_TYPES
    return frozenset(t for t, name in EVENT_TOPICS.items() if name == topic)
