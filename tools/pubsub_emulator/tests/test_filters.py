"""Unit tests of the filter language (no server needed)."""

from __future__ import annotations

import pytest

from captionqc.pubsub_emulator.errors import PubSubError
from captionqc.pubsub_emulator.filters import compile_filter


@pytest.mark.parametrize(
    ("text", "attributes", "expected"),
    [
        ('attributes.a = "1"', {"a": "1"}, True),
        ('attributes.a = "1"', {"a": "2"}, False),
        ('attributes.a != "1"', {}, True),
        ("attributes:a", {"a": ""}, True),
        ("NOT attributes:a", {"a": ""}, False),
        ("-attributes:a", {}, True),
        ('hasPrefix(attributes.a, "ab")', {"a": "abc"}, True),
        ('hasPrefix(attributes.a, "ab")', {}, False),
        ('attributes:a AND (attributes.b = "x" OR attributes.b = "y")', {"a": "", "b": "y"}, True),
        ("attributes:a OR attributes:b OR attributes:c", {"c": "1"}, True),
        ('attributes."with space" = "v\\"q"', {"with space": 'v"q'}, True),
    ],
)
def test_filter_matches(text: str, attributes: dict[str, str], expected: bool) -> None:
    predicate = compile_filter(text)
    assert predicate is not None
    assert predicate(attributes) is expected


@pytest.mark.parametrize(
    "text",
    [
        'attributes.a == "1"',
        "attributes:a AND attributes:b OR attributes:c",
        'data = "x"',
        "attributes.a = unquoted",
        "(attributes:a",
        "attributes:a extra",
        "x" * 300,
    ],
)
def test_bad_filters_are_refused(text: str) -> None:
    with pytest.raises(PubSubError) as error:
        compile_filter(text)
    assert error.value.code.name == "INVALID_ARGUMENT"


def test_empty_filter_matches_everything() -> None:
    assert compile_filter("  ") is None
