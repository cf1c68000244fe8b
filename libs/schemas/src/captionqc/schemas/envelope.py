"""CloudEvents 1.0 on Pub/Sub (Google's CloudEvents Pub/Sub binding).

We publish in **binary mode**: the event's context attributes travel as Pub/Sub message attributes prefixed
``ce-``; the data is the JSON payload. We also receive **structured mode** (``content-type:
application/cloudevents+json``, the whole event as one JSON object), as the binding says receivers should: upstream
publishers using a CloudEvents SDK may send either. Anything else in the attributes (``traceparent``,
``tracestate``, an intake message's ``authorization``, dead-letter bookkeeping) is kept as an extension so that
tracing and diagnostics survive a round trip.

Whatever is decoded may end up in PostgreSQL, which stores neither NUL nor (in our text columns) other control
characters: attributes with a control character and payloads with a NUL are refused here, before any handler.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from captionqc.schemas.events import (
    PAYLOAD_TYPES,
    SUPPORTED_SCHEMA_VERSIONS,
    EventPayload,
    EventType,
)
from captionqc.schemas.reasons import Refusal

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
DATASCHEMA_PREFIX = "urn:captionqc:schema:"
_CE_REQUIRED = ("ce-id", "ce-source", "ce-type", "ce-specversion")
# Structured mode: the context attributes we read from the JSON event, as their binary-mode attribute names.
_STRUCTURED_CONTEXT = ("id", "source", "type", "specversion", "subject", "time", "dataschema")

P = TypeVar("P", bound=EventPayload)


class EventDecodeError(Exception):
    """A received message can never be processed as it is: it must be failed or dead-lettered, not retried."""

    reason: ClassVar[Refusal] = Refusal.INVALID_EVENT_DATA

    def __init__(self, message: str, *, attributes: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.attributes = dict(attributes or {})

    @property
    def subject(self) -> str | None:
        """The job id, when the envelope named one: lets a consumer fail the right job."""
        return self.attributes.get("ce-subject")


class MalformedEnvelope(EventDecodeError):
    reason = Refusal.MALFORMED_ENVELOPE


class UnknownEventType(EventDecodeError):
    reason = Refusal.UNKNOWN_EVENT_TYPE


class UnsupportedSchemaVersion(EventDecodeError):
    reason = Refusal.UNSUPPORTED_SCHEMA_VERSION


class InvalidEventData(EventDecodeError):
    reason = Refusal.INVALID_EVENT_DATA


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
    """Decode a received Pub/Sub message into a typed event, or raise an `EventDecodeError` saying what is wrong.

    Binary mode (context in ``ce-`` attributes) and structured mode (the whole event as JSON) give the same event;
    in both, the message attributes that are not CloudEvents context become the event's extensions.
    """
    attrs = dict(attributes)
    _refuse_control_characters(attrs)
    content_type = attrs.get("content-type", CONTENT_TYPE)
    media_type = content_type.split(";")[0].strip().lower()
    extensions = {k: v for k, v in attrs.items() if not k.startswith("ce-") and k != "content-type"}
    if media_type == STRUCTURED_CONTENT_TYPE:
        context, data = _structured(data, attrs)
        # The JSON event is the whole context: ``ce-`` attributes alongside it are not read.
        attrs = {**extensions, **context}
    elif media_type != CONTENT_TYPE:
        raise MalformedEnvelope(
            f"unsupported content-type {content_type!r} (expected {CONTENT_TYPE} or {STRUCTURED_CONTENT_TYPE})",
            attributes=attrs,
        )
    missing = [name for name in _CE_REQUIRED if not attrs.get(name)]
    if missing:
        raise MalformedEnvelope(f"missing CloudEvents attributes: {', '.join(missing)}", attributes=attrs)
    if attrs["ce-specversion"] != SPEC_VERSION:
        raise MalformedEnvelope(
            f"unsupported CloudEvents specversion {attrs['ce-specversion']!r} (expected {SPEC_VERSION})",
            attributes=attrs,
        )
    try:
        event_type = EventType(attrs["ce-type"])
    except ValueError:
        raise UnknownEventType(f"unknown event type {attrs['ce-type']!r}", attributes=attrs) from None
    try:
        raw = json.loads(data)
        # Recursive, like the decoder: a document nested deeper than Python's stack is refused, not retried.
        holds_nul = _holds_nul(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEventData(f"data is not valid JSON: {exc}", attributes=attrs) from None
    except RecursionError:
        raise InvalidEventData("data is nested too deeply", attributes=attrs) from None
    if not isinstance(raw, dict):
        raise InvalidEventData("data must be a JSON object", attributes=attrs)
    if holds_nul:
        # Valid JSON, but PostgreSQL stores no NUL in text or JSONB: refused here rather than failing in a handler.
        raise InvalidEventData("data contains a NUL character (\\u0000)", attributes=attrs)
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
    return CloudEvent[Any](
        id=attrs["ce-id"],
        source=attrs["ce-source"],
        type=event_type,
        subject=subject,
        time=time,
        data=payload,
        extensions=extensions,
    )


def _refuse_control_characters(attributes: Mapping[str, str]) -> None:
    """A control character in an attribute's key or value: refused, naming the attribute but never its value
    (it may be a token, and the log line must not become a way to smuggle one out)."""
    for key, value in attributes.items():
        if _has_control(key):
            raise MalformedEnvelope(
                f"attribute name {key!r} contains a control character", attributes=_without(attributes, key)
            )
        if _has_control(value):
            raise MalformedEnvelope(
                f"attribute {key!r} contains a control character", attributes=_without(attributes, key)
            )


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in text)


def _without(attributes: Mapping[str, str], key: str) -> dict[str, str]:
    return {k: v for k, v in attributes.items() if k != key}


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _structured(data: bytes, attributes: Mapping[str, str]) -> tuple[dict[str, str], bytes]:
    """A structured-mode message → its context as binary-mode attributes, and the ``data`` member as JSON bytes."""
    try:
        envelope = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEnvelope(f"structured CloudEvent is not valid JSON: {exc}", attributes=attributes) from None
    except RecursionError:
        raise MalformedEnvelope("structured CloudEvent is nested too deeply", attributes=attributes) from None
    if not isinstance(envelope, dict):
        raise MalformedEnvelope("structured CloudEvent must be a JSON object", attributes=attributes)
    context: dict[str, str] = {}
    for name in _STRUCTURED_CONTEXT:
        value = envelope.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise MalformedEnvelope(f"structured CloudEvent member {name!r} must be a string", attributes=attributes)
        context[f"ce-{name}"] = value
    _refuse_control_characters(context)
    datacontenttype = envelope.get("datacontenttype", CONTENT_TYPE)
    if not isinstance(datacontenttype, str) or datacontenttype.split(";")[0].strip().lower() != CONTENT_TYPE:
        raise MalformedEnvelope(
            f"structured CloudEvent datacontenttype must be {CONTENT_TYPE}", attributes={**attributes, **context}
        )
    if "data_base64" in envelope:
        raise MalformedEnvelope(
            "structured CloudEvent data must be JSON (data), not data_base64", attributes={**attributes, **context}
        )
    if "data" not in envelope:
        raise InvalidEventData("structured CloudEvent has no data", attributes={**attributes, **context})
    return context, json.dumps(envelope["data"]).encode()


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
