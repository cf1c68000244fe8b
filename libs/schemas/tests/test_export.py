from __future__ import annotations

import json

from captionqc.schemas import EventType
from captionqc.schemas.export import DEFAULT_OUT, asyncapi_document, stale_files


def test_committed_schemas_are_fresh() -> None:
    stale = stale_files()
    assert not stale, f"stale generated schemas: {stale}; run `make schemas`"


def test_every_event_type_has_a_schema_file() -> None:
    for event_type in EventType:
        doc = json.loads((DEFAULT_OUT / f"{event_type.value}.json").read_text())
        assert doc["title"] == event_type.value
        assert doc["additionalProperties"] is False


def test_asyncapi_names_every_topic_and_event() -> None:
    doc = asyncapi_document()
    assert doc["asyncapi"].startswith("3.")
    assert {"intake", "jobs", "ocr-results", "asr-results", "findings", "progress", "dead-letter"} <= set(
        doc["channels"]
    )
    internal = {t.value.replace(".", "_") for t in EventType}
    assert set(doc["components"]["messages"]) == internal | {"intake_captionqc_job_requested"}


def test_asyncapi_intake_message_requires_the_bearer_token() -> None:
    doc = asyncapi_document()
    intake = doc["components"]["messages"]["intake_captionqc_job_requested"]
    assert "authorization" in intake["headers"]["required"]
    assert set(doc["channels"]["intake"]["messages"]) == {"intake_captionqc_job_requested"}
    internal = doc["components"]["messages"]["captionqc_job_requested"]
    assert "authorization" not in internal["headers"]["properties"]
