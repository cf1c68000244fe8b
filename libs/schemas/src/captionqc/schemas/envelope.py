"""CloudEvents 1.0 on Pub/Sub, binary content mode (Google's CloudEvents Pub/Sub binding).

The event's context attributes travel as Pub/Sub message attributes prefixed ``ce-``; the data is the JSON
payload. Anything else in the attributes (``traceparent``, ``tracestate``, dead-letter bookkeeping) is kept as
an extension so that tracing and diagnostics survive a round trip.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from captionqc.schemas.events import (
    PAYLOAD_TYPES,
    SUPPORTED_SCHEMA_VERSIONS,
    EventPayload,
    EventType,
)

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
DATASCHEMA_PREFIX = "urn:captionqc:schema:"
_CE_REQUIRED = ("ce-id", "ce-source", "ce-type", "ce-specversion")

P = TypeVar("P", bound=EventPayload)


class EventDecodeError(Exception):
    """A received message can never be processed as it is: it must be failed or dead-lettered, not retried."""

    reason = "invalid_event"

    def __init__(self, message: str, *, attributes: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.attributes = dict(attributes or {})

    @property
    def subject(self) -> str | None:
        """The job id, when the envelope named one: lets a consumer fail the right job."""
        return self.attributes.get("ce-subject")


class MalformedEnvelope(EventDecodeError):
    reason = "malformed_envelope"


class UnknownEventType(EventDecodeError):
    reason = "unknown_event_type"


class UnsupportedSchemaVersion(EventDecodeError):
    reason = "unsupported_schema_version"


class InvalidEventData(EventDecodeError):
    reason = "invalid_event_data"


class CloudEvent(BaseModel, Generic[P]):
    """A typed event: CloudEvents context attributes plus the payload."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=False)

    id: str
    source: str
    type: EventType
    subject: str
    time: datetime
    data: P
    extensions: dict[str, str] = Field(default_factory=dict)

    @property
    def job_id(self) -> str:
        return self.data.job_id

    @property
    def tenant(self) -> str:
        return self.data.tenant


def deterministic_event_id(*parts: str) -> str:
    """An event id derived from what the event is about, so a redelivered input yields the same ``ce-id``."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return str(uuid.UUID(digest[:32]))


def new_event(
    event_type: EventType,
    data: P,
    *,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent[P]:
    """Build an event for ``data``; checks that the payload is the model the type requires."""
    expected = PAYLOAD_TYPES[event_type]
    if not isinstance(data, expected):
        raise TypeError(f"{event_type} carries {expected.__name__}, not {type(data).__name__}")
    return CloudEvent[P](
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=event_type,
        subject=data.job_id,
        time=time or datetime.now(UTC),
        data=data,
    )


def dataschema_for(event_type: EventType, version: int) -> str:
    return f"{DATASCHEMA_PREFIX}{event_type.value}:v{version}"


def to_pubsub(
    event: CloudEvent[Any], *, extra_attributes: Mapping[str, str] | None = None
) -> tuple[bytes, dict[str, str]]:
    """Encode an event as a Pub/Sub message: (data, attributes)."""
    payload: EventPayload = event.data
    attributes = {
        **event.extensions,
        **(extra_attributes or {}),
        "ce-id": event.id,
        "ce-source": event.source,
        "ce-type": event.type.value,
        "ce-specversion": SPEC_VERSION,
        "ce-time": event.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "ce-subject": event.subject,
        "ce-dataschema": dataschema_for(event.type, payload.schema_version),
        "content-type": CONTENT_TYPE,
    }
    return payload.model_dump_json().encode(), attributes


def from_pubsub(data: bytes, attributes: Mapping[str, str]) -> CloudEvent[Any]:
    """Decode a received Pub/Sub message into a typed event, or raise an `EventDecodeError` saying what is wrong."""
    attrs = dict(attributes)
    missing = [name for name in _CE_REQUIRED if not attrs.get(name)]
    if missing:
        raise MalformedEnvelope(f"missing CloudEvents attributes: {', '.join(missing)}", attributes=attrs)
    if attrs["ce-specversion"] != SPEC_VERSION:
        raise MalformedEnvelope(
            f"unsupported CloudEvents specversion {attrs['ce-specversion']!r} (expected {SPEC_VERSION})",
            attributes=attrs,
        )
    content_type = attrs.get("content-type", CONTENT_TYPE)
    if content_type.split(";")[0].strip().lower() != CONTENT_TYPE:
        raise MalformedEnvelope(
            f"unsupported content-type {content_type!r} (expected {CONTENT_TYPE})", attributes=attrs
        )
    try:
        event_type = EventType(attrs["ce-type"])
    except ValueError:
        raise UnknownEventType(f"unknown event type {attrs['ce-type']!r}", attributes=attrs) from None
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEventData(f"data is not valid JSON: {exc}", attributes=attrs) from None
    if not isinstance(raw, dict):
        raise InvalidEventData("data must be a JSON object", attributes=attrs)
    version = raw.get("schema_version", 1)
    if type(version) is not int or version not in SUPPORTED_SCHEMA_VERSIONS:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_SCHEMA_VERSIONS))
        raise UnsupportedSchemaVersion(
            f"{event_type.value} schema_version {version!r} is not supported (supported: {supported})",
            attributes=attrs,
        )
    model = PAYLOAD_TYPES[event_type]
    try:
        payload = model.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidEventData(f"{event_type.value}: {describe_validation_error(exc)}", attributes=attrs) from None
    subject = attrs.get("ce-subject") or payload.job_id
    if subject != payload.job_id:
        raise InvalidEventData(
            f"ce-subject {subject!r} does not match data.job_id {payload.job_id!r}", attributes=attrs
        )
    try:
        time = datetime.fromisoformat(attrs["ce-time"]) if attrs.get("ce-time") else datetime.now(UTC)
    except ValueError:
        raise MalformedEnvelope(
            f"ce-time {attrs['ce-time']!r} is not an RFC 3339 timestamp", attributes=attrs
        ) from None
    extensions = {k: v for k, v in attrs.items() if not k.startswith("ce-") and k != "content-type"}
    return CloudEvent[Any](
        id=attrs["ce-id"],
        source=attrs["ce-source"],
        type=event_type,
        subject=subject,
        time=time,
        data=payload,
        extensions=extensions,
    )


def describe_validation_error(exc: ValidationError, *, limit: int = 5) -> str:
    """Field errors as one readable line: ``media.uri: Field required; language: String should match …``."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
