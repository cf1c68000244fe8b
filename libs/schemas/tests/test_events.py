from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from captionqc.schemas import (
    PAYLOAD_TYPES,
    AsrCompleted,
    AsrStats,
    CaptionSegment,
    CheckKind,
    CrosscheckCompleted,
    EngineInfo,
    EventType,
    FailureReason,
    FindingsSummary,
    JobRequested,
    MediaRef,
    OcrCompleted,
    OcrStats,
    Refusal,
    Severity,
    Stage,
    StageFailed,
    StageProgress,
    TimedWord,
    TypoFinding,
    new_event,
)
from captionqc.schemas.envelope import (
    STRUCTURED_CONTENT_TYPE,
    EventDecodeError,
    InvalidEventData,
    MalformedEnvelope,
    UnknownEventType,
    UnsupportedSchemaVersion,
    deterministic_event_id,
    from_pubsub,
    to_pubsub,
)

JOB = str(uuid.uuid4())
ENGINE = EngineInfo(name="rapidocr", version="1.4.4")


def payloads() -> dict[EventType, Any]:
    return {
        EventType.JOB_REQUESTED: JobRequested(
            job_id=JOB, tenant="acme", media=MediaRef(uri="gs://b/c.mp4"), requested_at=datetime.now(UTC)
        ),
        EventType.OCR_PROGRESS: StageProgress(job_id=JOB, tenant="acme", stage=Stage.OCR, progress=0.5),
        EventType.OCR_COMPLETED: OcrCompleted(
            job_id=JOB,
            tenant="acme",
            segments=[CaptionSegment(start_s=1.0, end_s=2.5, text="Hello", confidence=0.9)],
            engine=ENGINE,
            stats=OcrStats(media_duration_s=30, frames_sampled=60, frames_ocred=12, processing_s=3.2),
        ),
        EventType.OCR_FAILED: StageFailed(
            job_id=JOB,
            tenant="acme",
            stage=Stage.OCR,
            reason=FailureReason.NO_VIDEO_STREAM,
            message="no video",
        ),
        EventType.ASR_PROGRESS: StageProgress(job_id=JOB, tenant="acme", stage=Stage.ASR, progress=1.0),
        EventType.ASR_COMPLETED: AsrCompleted(
            job_id=JOB,
            tenant="acme",
            words=[TimedWord(start_s=1.0, end_s=1.3, word="hello", confidence=0.8)],
            engine=EngineInfo(name="faster-whisper", version="tiny.en"),
            stats=AsrStats(media_duration_s=30, processing_s=1.2, real_time_factor=0.04),
        ),
        EventType.ASR_FAILED: StageFailed(
            job_id=JOB,
            tenant="acme",
            stage=Stage.ASR,
            reason=FailureReason.NO_AUDIO_STREAM,
            message="no audio",
        ),
        EventType.CROSSCHECK_COMPLETED: CrosscheckCompleted(
            job_id=JOB,
            tenant="acme",
            findings=[
                TypoFinding(
                    id="f1",
                    start_s=1.0,
                    end_s=2.5,
                    caption_text="Teh council",
                    word="Teh",
                    suggestion="the",
                    kind=CheckKind.MISSPELLING,
                    confidence=0.93,
                    severity=Severity.ERROR,
                    evidence={"edit_distance": 2, "is_word": False},
                )
            ],
            summary=FindingsSummary(counts={CheckKind.MISSPELLING: 1}, caption_words=2, spoken_words=2),
        ),
        EventType.CROSSCHECK_FAILED: StageFailed(
            job_id=JOB,
            tenant="acme",
            stage=Stage.CROSSCHECK,
            reason=FailureReason.UPSTREAM_FAILED,
            message="ocr failed: no video",
        ),
    }


def test_every_event_type_has_a_sample() -> None:
    assert set(payloads()) == set(PAYLOAD_TYPES)


@pytest.mark.parametrize("event_type", list(EventType))
def test_round_trip_through_pubsub_binding(event_type: EventType) -> None:
    event = new_event(event_type, payloads()[event_type], source="//captionqc/test")
    data, attributes = to_pubsub(event)
    assert attributes["ce-type"] == event_type.value
    assert attributes["ce-subject"] == JOB
    assert attributes["ce-specversion"] == "1.0"
    assert attributes["content-type"] == "application/json"
    decoded = from_pubsub(data, attributes)
    assert decoded.data == event.data
    assert decoded.id == event.id
    assert decoded.type is event_type


def test_extensions_survive_round_trip() -> None:
    event = new_event(EventType.JOB_REQUESTED, payloads()[EventType.JOB_REQUESTED], source="//t")
    data, attributes = to_pubsub(event, extra_attributes={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})
    assert from_pubsub(data, attributes).extensions["traceparent"].startswith("00-aaaa")


def test_payload_must_match_type() -> None:
    with pytest.raises(TypeError):
        new_event(EventType.OCR_COMPLETED, payloads()[EventType.JOB_REQUESTED], source="//t")


def good_message() -> tuple[bytes, dict[str, str]]:
    return to_pubsub(new_event(EventType.JOB_REQUESTED, payloads()[EventType.JOB_REQUESTED], source="//t"))


def test_unknown_type() -> None:
    data, attributes = good_message()
    with pytest.raises(UnknownEventType, match=r"captionqc\.job\.exploded"):
        from_pubsub(data, {**attributes, "ce-type": "captionqc.job.exploded"})


def test_missing_ce_attributes() -> None:
    data, _ = good_message()
    with pytest.raises(MalformedEnvelope, match="ce-id"):
        from_pubsub(data, {"ce-type": "captionqc.job.requested"})


def test_unsupported_version_named() -> None:
    data, attributes = good_message()
    raw = json.loads(data)
    raw["schema_version"] = 7
    with pytest.raises(UnsupportedSchemaVersion, match="schema_version 7"):
        from_pubsub(json.dumps(raw).encode(), attributes)


def test_field_errors_are_named() -> None:
    data, attributes = good_message()
    raw = json.loads(data)
    del raw["media"]
    raw["language"] = "not a tag!"
    with pytest.raises(InvalidEventData) as err:
        from_pubsub(json.dumps(raw).encode(), attributes)
    assert "media: Field required" in err.value.message
    assert "language" in err.value.message
    assert err.value.subject == JOB


def test_subject_must_match_job_id() -> None:
    data, attributes = good_message()
    with pytest.raises(InvalidEventData, match="ce-subject"):
        from_pubsub(data, {**attributes, "ce-subject": str(uuid.uuid4())})


@pytest.mark.parametrize(
    "mutation",
    [
        {"extra_field": 1},
        {"tenant": "ACME Corp"},  # not a slug
        {"job_id": "not-a-uuid"},
        {"options": {"checks": []}},
        {"options": {"caption_region": {"x": 0.5, "y": 0.5, "width": 0.8, "height": 0.2}}},
    ],
)
def test_job_requested_is_strict(mutation: dict[str, Any]) -> None:
    raw = json.loads(payloads()[EventType.JOB_REQUESTED].model_dump_json())
    raw.update(mutation)
    with pytest.raises(ValidationError):
        JobRequested.model_validate_json(json.dumps(raw))


def test_strings_are_not_coerced_to_numbers() -> None:
    raw = json.loads(payloads()[EventType.OCR_PROGRESS].model_dump_json())
    raw["progress"] = "0.5"
    with pytest.raises(ValidationError):
        StageProgress.model_validate_json(json.dumps(raw))


def test_claim_check_needs_exactly_one_of_inline_or_uri() -> None:
    base = payloads()[EventType.OCR_COMPLETED].model_dump()
    with pytest.raises(ValidationError, match="exactly one"):
        OcrCompleted.model_validate({**base, "segments": None})
    with pytest.raises(ValidationError, match="exactly one"):
        OcrCompleted.model_validate({**base, "result_uri": "gs://results/x.json"})
    ok = OcrCompleted.model_validate({**base, "segments": None, "result_uri": "gs://results/x.json"})
    assert ok.segments is None


@pytest.mark.parametrize("event_type", [EventType.OCR_COMPLETED, EventType.ASR_COMPLETED])
def test_by_reference_leaves_out_only_the_inline_part(event_type: EventType) -> None:
    inline = payloads()[event_type]
    assert isinstance(inline, OcrCompleted | AsrCompleted)
    stored = inline.by_reference("gs://results/x.json")
    assert type(stored) is type(inline)
    field = "segments" if event_type is EventType.OCR_COMPLETED else "words"
    assert getattr(inline, field)
    assert stored.model_dump(exclude={field, "result_uri"}) == inline.model_dump(exclude={field, "result_uri"})
    assert (getattr(stored, field), stored.result_uri) == (None, "gs://results/x.json")


def test_deterministic_event_id() -> None:
    assert deterministic_event_id(JOB, "ocr", "v1") == deterministic_event_id(JOB, "ocr", "v1")
    assert deterministic_event_id(JOB, "ocr", "v1") != deterministic_event_id(JOB, "asr", "v1")
    uuid.UUID(deterministic_event_id("x"))


def test_decode_errors_carry_registered_refusal_codes() -> None:
    for error in (MalformedEnvelope, UnknownEventType, UnsupportedSchemaVersion, InvalidEventData):
        assert isinstance(error.reason, Refusal)
        assert issubclass(error, EventDecodeError)


@pytest.mark.parametrize("char", ["\x00", "\x07", "\n", "\x1b", "\x7f", "\x85"])
@pytest.mark.parametrize("attribute", ["ce-subject", "ce-id", "ce-source", "authorization", "traceparent"])
def test_control_character_in_an_attribute_value_is_refused_without_echoing_it(attribute: str, char: str) -> None:
    data, attributes = good_message()
    secret = f"tok{char}en-value-never-echoed"
    with pytest.raises(MalformedEnvelope) as err:
        from_pubsub(data, {**attributes, attribute: secret})
    assert repr(attribute) in err.value.message
    assert "never-echoed" not in err.value.message
    assert attribute not in err.value.attributes  # nor kept for a dead letter's copy


def test_control_character_in_an_attribute_name_is_refused() -> None:
    data, attributes = good_message()
    with pytest.raises(MalformedEnvelope, match="attribute name"):
        from_pubsub(data, {**attributes, "x-\x00": "v"})


def test_escaped_nul_is_refused_even_in_a_free_text_field() -> None:
    """StageFailed.message accepts any text; the NUL escape is valid JSON and only PostgreSQL would refuse it."""
    event = new_event(EventType.OCR_FAILED, payloads()[EventType.OCR_FAILED], source="//t")
    data, attributes = to_pubsub(event)
    tampered = data.replace(b'"no video"', b'"no\\u0000video"')
    assert tampered != data
    with pytest.raises(InvalidEventData, match="NUL"):
        from_pubsub(tampered, attributes)


def test_a_raw_nul_byte_in_the_payload_is_refused() -> None:
    event = new_event(EventType.OCR_FAILED, payloads()[EventType.OCR_FAILED], source="//t")
    data, attributes = to_pubsub(event)
    with pytest.raises(InvalidEventData):
        from_pubsub(data.replace(b'"no video"', b'"no\x00video"'), attributes)


def test_deeply_nested_data_is_refused_at_once() -> None:
    """A decoder bomb: refused as invalid data (dead-lettered at once), not a RecursionError that is retried."""
    _, attributes = good_message()
    bomb = b'{"job_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(InvalidEventData, match="nested too deeply"):
        from_pubsub(bomb, attributes)
    with pytest.raises(MalformedEnvelope, match="nested too deeply"):
        from_pubsub(bomb, {"content-type": "application/cloudevents+json"})


def structured(event_type: EventType = EventType.JOB_REQUESTED, **changes: Any) -> tuple[bytes, dict[str, str]]:
    """The event as a CloudEvents SDK sends it in structured mode: one JSON object, attributes aside."""
    event = new_event(event_type, payloads()[event_type], source="//upstream/broadcast")
    _, binary = to_pubsub(event)
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event_type.value,
        "subject": event.subject,
        "time": binary["ce-time"],
        "datacontenttype": "application/json",
        "data": json.loads(event.data.model_dump_json()),
    }
    envelope.update(changes)
    envelope = {k: v for k, v in envelope.items() if v is not None}
    return json.dumps(envelope).encode(), {"content-type": STRUCTURED_CONTENT_TYPE, "authorization": "Bearer t"}


@pytest.mark.parametrize("event_type", list(EventType))
def test_structured_mode_gives_the_same_event_as_binary_mode(event_type: EventType) -> None:
    event = new_event(event_type, payloads()[event_type], source="//upstream/broadcast")
    data, attributes = to_pubsub(event)
    envelope = {
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event_type.value,
        "subject": event.subject,
        "time": attributes["ce-time"],
        "datacontenttype": "application/json; charset=utf-8",
        "dataschema": attributes["ce-dataschema"],
        "data": json.loads(data),
    }
    from_binary = from_pubsub(data, {**attributes, "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})
    from_structured = from_pubsub(
        json.dumps(envelope).encode(),
        {
            "content-type": "application/cloudevents+json; charset=utf-8",
            "traceparent": from_binary.extensions["traceparent"],
        },
    )
    assert from_structured == from_binary


def test_structured_mode_extensions_come_from_the_attributes() -> None:
    data, attributes = structured(traceparent="00-" + "c" * 32 + "-" + "d" * 16 + "-01")
    event = from_pubsub(data, attributes)
    assert event.extensions == {"authorization": "Bearer t"}


def test_structured_mode_without_subject_or_time_takes_the_job_id() -> None:
    data, attributes = structured(subject=None, time=None, datacontenttype=None)
    event = from_pubsub(data, attributes)
    assert event.subject == JOB


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"id": None}, MalformedEnvelope, "ce-id"),
        ({"specversion": "0.3"}, MalformedEnvelope, "specversion"),
        ({"type": "captionqc.job.exploded"}, UnknownEventType, "exploded"),
        ({"id": 7}, MalformedEnvelope, "'id' must be a string"),
        ({"subject": "x\x00y"}, MalformedEnvelope, "ce-subject"),
        ({"datacontenttype": "application/xml"}, MalformedEnvelope, "datacontenttype"),
        ({"data": None, "data_base64": "e30="}, MalformedEnvelope, "data_base64"),
        ({"data": None}, InvalidEventData, "no data"),
        ({"data": [1, 2]}, InvalidEventData, "JSON object"),
        ({"subject": str(uuid.uuid4())}, InvalidEventData, "ce-subject"),
    ],
)
def test_structured_mode_refusals(changes: dict[str, Any], error: type[EventDecodeError], match: str) -> None:
    data, attributes = structured(**changes)
    with pytest.raises(error, match=match):
        from_pubsub(data, attributes)


def test_structured_mode_body_must_be_a_json_object() -> None:
    with pytest.raises(MalformedEnvelope, match="not valid JSON"):
        from_pubsub(b"{nope", {"content-type": STRUCTURED_CONTENT_TYPE})
    with pytest.raises(MalformedEnvelope, match="JSON object"):
        from_pubsub(b"[]", {"content-type": STRUCTURED_CONTENT_TYPE})


def test_other_content_types_are_refused() -> None:
    data, attributes = good_message()
    with pytest.raises(MalformedEnvelope, match="content-type"):
        from_pubsub(data, {**attributes, "content-type": "text/plain"})
