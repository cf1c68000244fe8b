"""Generate the JSON Schema of every event and an AsyncAPI 3 document: what upstream publishers code against.

Run ``python -m captionqc.schemas.export`` (``make schemas``); ``--check`` exits 1 when the committed files are stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from captionqc.schemas.envelope import CONTENT_TYPE, SPEC_VERSION, dataschema_for
from captionqc.schemas.events import PAYLOAD_TYPES, SCHEMA_VERSION, EventType
from captionqc.schemas.topology import EVENT_TOPICS, INTAKE_TYPES, TOPOLOGY, TopicName

DEFAULT_OUT = Path(__file__).resolve().parents[3] / "jsonschema"


def event_schema(event_type: EventType) -> dict[str, Any]:
    model = PAYLOAD_TYPES[event_type]
    schema = model.model_json_schema(mode="validation")
    schema["$id"] = dataschema_for(event_type, SCHEMA_VERSION)
    schema["title"] = event_type.value
    schema["$comment"] = f"data of a CloudEvent of type {event_type.value}; payload model {model.__name__}"
    return schema


# The attribute an upstream publisher's bearer token travels in on the intake topic.
AUTHORIZATION_ATTRIBUTE = "authorization"


def _ce_attributes_schema(event_type: EventType, *, intake: bool = False) -> dict[str, Any]:
    required = ["ce-id", "ce-source", "ce-type", "ce-specversion", "ce-subject", "ce-time", "content-type"]
    props: dict[str, Any] = {
        "ce-id": {
            "type": "string",
            "description": "The publisher's idempotency key within its tenant: a redelivered or re-sent request "
            "with the same id is one job; the same id with another payload is refused (idempotency_conflict)."
            if intake
            else "Unique per (ce-source, ce-id); a redelivered result keeps its id.",
        },
        "ce-source": {
            "type": "string",
            "description": "URI reference of the producer, e.g. //captionqc/ocr.",
        },
        "ce-type": {"const": event_type.value},
        "ce-specversion": {"const": SPEC_VERSION},
        "ce-subject": {"type": "string", "description": "The job id (equals data.job_id)."},
        "ce-time": {"type": "string", "format": "date-time"},
        "ce-dataschema": {"const": dataschema_for(event_type, SCHEMA_VERSION)},
        "content-type": {"const": CONTENT_TYPE},
        "traceparent": {
            "type": "string",
            "description": "W3C trace context; the consumer continues this trace.",
        },
        "tracestate": {"type": "string"},
    }
    if intake:
        props[AUTHORIZATION_ATTRIBUTE] = {
            "type": "string",
            "pattern": "^Bearer [A-Za-z0-9_=-]+\\.[A-Za-z0-9_=-]+\\.[A-Za-z0-9_=-]*$",
            "maxLength": 1024,
            "description": "`Bearer <JWT>`, the same token the HTTP API takes (scope jobs:write; its tenant must "
            "equal data.tenant). Pub/Sub caps an attribute value at 1024 bytes.",
        }
        required = [*required, AUTHORIZATION_ATTRIBUTE]
    return {"type": "object", "properties": props, "required": required}


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in TOPOLOGY.topics:
        intake = topic.name == TopicName.INTAKE
        types = sorted(INTAKE_TYPES) if intake else [t for t, name in EVENT_TOPICS.items() if name == topic.name]
        prefix = "intake_" if intake else ""
        channels[topic.name] = {
            "address": topic.name,
            "description": (
                "Pub/Sub topic `intake`: the one topic upstream systems publish to. Each message carries a bearer "
                "token; the gateway verifies it and accepts the job as `POST /v1/jobs` would."
                if intake
                else f"Pub/Sub topic `{topic.name}` (internal: only its producer may publish)"
            ),
            "messages": {
                prefix + t.value.replace(".", "_"): {
                    "$ref": f"#/components/messages/{prefix}{t.value.replace('.', '_')}"
                }
                for t in types
            },
        }
        for sub in TOPOLOGY.subscriptions:
            if sub.topic == topic.name:
                operations[f"{sub.consumer}_receives_{sub.name}"] = {
                    "action": "receive",
                    "channel": {"$ref": f"#/channels/{topic.name}"},
                    "summary": f"{sub.consumer} consumes subscription `{sub.name}`",
                }
    for event_type in EventType:
        key = event_type.value.replace(".", "_")
        messages[key] = {
            "name": event_type.value,
            "contentType": CONTENT_TYPE,
            "headers": _ce_attributes_schema(event_type),
            "payload": {"$ref": f"./{event_type.value}.json"},
        }
    for event_type in sorted(INTAKE_TYPES):
        messages[f"intake_{event_type.value.replace('.', '_')}"] = {
            "name": event_type.value,
            "contentType": CONTENT_TYPE,
            "headers": _ce_attributes_schema(event_type, intake=True),
            "payload": {"$ref": f"./{event_type.value}.json"},
        }
        key = f"upstream_publishes_{event_type.value.replace('.', '_')}"
        operations[key] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{TopicName.INTAKE}"},
            "summary": "an upstream broadcast system requests a job",
            "messages": [
                {"$ref": f"#/channels/{TopicName.INTAKE}/messages/intake_{event_type.value.replace('.', '_')}"}
            ],
        }
    for event_type, topic_name in EVENT_TOPICS.items():
        key = f"publish_{event_type.value.replace('.', '_')}"
        operations[key] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic_name}"},
            "messages": [{"$ref": f"#/channels/{topic_name}/messages/{event_type.value.replace('.', '_')}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "captionqc events",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": (
                "CloudEvents 1.0 on Google Cloud Pub/Sub, binary mode (context attributes as `ce-*` message "
                "attributes, JSON data) or structured mode (`content-type: application/cloudevents+json`). "
                "Upstream systems publish `captionqc.job.requested` to the `intake` topic with a bearer token in "
                "the `authorization` attribute; every other topic is internal (see docs/intake.md)."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render_all() -> dict[str, str]:
    """Every generated file, by name, as text."""
    files = {f"{t.value}.json": _dump(event_schema(t)) for t in EventType}
    files["asyncapi.json"] = _dump(asyncapi_document())
    return files


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def stale_files(out: Path = DEFAULT_OUT) -> list[str]:
    expected = render_all()
    stale = [name for name, text in expected.items() if not (out / name).is_file() or (out / name).read_text() != text]
    extra = sorted(p.name for p in out.glob("*.json") if p.name not in expected) if out.is_dir() else []
    return stale + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        if stale:
            print(f"stale generated schemas: {', '.join(stale)}; run `make schemas`", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (args.out / name).write_text(text)
    print(f"wrote {len(render_all())} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
