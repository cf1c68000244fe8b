"""Numbers written as digits or as words reduce to one canonical key, so "80,000" and "eighty thousand" match.

Canonical keys: cardinals as plain digits ("80000", "3.5"), ordinals as digits plus suffix ("21st").
Only the patterns a news caption or Whisper actually produces are covered; anything else stays a word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

_UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000, "trillion": 1_000_000_000_000}
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20,
    "thirtieth": 30, "fortieth": 40, "fiftieth": 50, "sixtieth": 60, "seventieth": 70, "eightieth": 80,
    "ninetieth": 90, "hundredth": 100, "thousandth": 1000,
}  # fmt: skip

NUMBER_WORDS = frozenset(_UNITS) | frozenset(_TENS) | frozenset(_SCALES) | {"hundred"} | frozenset(_ORDINALS)

_DIGITS = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$|^\d+(\.\d+)?$")
_ORDINAL_DIGITS = re.compile(r"^(\d+)(st|nd|rd|th)$")


def ordinal_suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def digit_key(text: str) -> str | None:
    """'80,000' → '80000', '3.50' → '3.5', '21st' → '21st'; None when the text is not a plain number."""
    if _DIGITS.match(text):
        try:
            value = Decimal(text.replace(",", ""))
        except InvalidOperation:
            return None
        return _render(value)
    m = _ORDINAL_DIGITS.match(text)
    if m:
        return f"{int(m.group(1))}{ordinal_suffix(int(m.group(1)))}"
    return None


def _render(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def scale_value(word: str) -> int | None:
    return _SCALES.get(word)


def words_to_key(words: Sequence[str]) -> tuple[str, int] | None:
    """Parse the longest number phrase at the start of ``words`` (lowercase, no punctuation).

    Returns (canonical key, words consumed), or None if ``words`` does not start with a number word.
    "and" is accepted inside a phrase ("two hundred and five") but never at its start or end.
    """
    total = 0
    current = 0
    consumed = 0
    seen_number = False
    i = 0
    last_was_tens = False
    while i < len(words):
        w = words[i]
        if w in _UNITS:
            # A unit follows a tens word ("twenty one") or starts a fresh group; "one two" is two numbers.
            if current % 100 != 0 and not (last_was_tens and _UNITS[w] < 10):
                break
            current += _UNITS[w]
            last_was_tens = False
        elif w in _TENS:
            if current % 100 != 0:
                break
            current += _TENS[w]
            last_was_tens = True
        elif w == "hundred":
            current = max(current, 1) * 100
            last_was_tens = False
        elif w in _SCALES:
            if not seen_number:
                break
            total += max(current, 1) * _SCALES[w]
            current = 0
            last_was_tens = False
        elif w in _ORDINALS:
            value = _ORDINALS[w]
            if value >= 100:
                current = max(current, 1) * value
            else:
                if current % 100 != 0 and not (last_was_tens and value < 10):
                    break
                current += value
            seen_number = True
            consumed = i + 1
            n = total + current
            return f"{n}{ordinal_suffix(n)}", consumed
        elif w == "and" and seen_number and i + 1 < len(words) and words[i + 1] in NUMBER_WORDS:
            i += 1
            continue
        else:
            break
        seen_number = True
        consumed = i + 1
        i += 1
    if not seen_number:
        return None
    return str(total + current), consumed
