"""Word error rate between a reference and a transcript, normalised the same way on both sides.

Used to score the engines against the sample clips' ground truth. Normalising is deliberately even-handed:
case, punctuation and apostrophes are dropped and numbers are spelled out on both sides, so "$80,000" (Whisper),
"eighty thousand dollars" (pocketsphinx) and "80,000 dollars" (the script) all compare equal. British English says
"two thousand three hundred and fifty" for 2,350: an engine that writes numbers as words hears that "and", so it
is dropped between a scale word and the rest of the number, or spelled-out numbers would cost one error each.
British and American spellings of a word are one word ("organisers" = "organizers"), folded with the list
Whisper's own English normaliser uses, so a British script is not scored against an American dictionary.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from importlib.resources import files

from rapidfuzz.distance import Levenshtein

_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]  # fmt: skip
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((1_000_000_000, "billion"), (1_000_000, "million"), (1_000, "thousand"))
_ORDINAL_SUFFIX = re.compile(r"^(\d+)(st|nd|rd|th)$")
_NUMBER = re.compile(r"^\d+(?:,\d{3})*(?:\.\d+)?$")
_CURRENCY = {"$": "dollars", "£": "pounds", "€": "euros"}


def int_to_words(n: int) -> list[str]:
    """English words for a non-negative integer: 80000 → ["eighty", "thousand"]."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [_TENS[tens]] + ([_ONES[ones]] if ones else [])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return [_ONES[hundreds], "hundred"] + (int_to_words(rest) if rest else [])
    for value, name in _SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return [*int_to_words(high), name] + (int_to_words(rest) if rest else [])
    raise AssertionError("unreachable")


def _number_words(text: str) -> list[str]:
    whole, _, fraction = text.replace(",", "").partition(".")
    words = int_to_words(int(whole))
    if fraction:
        words += ["point", *(_ONES[int(d)] for d in fraction)]
    return words


_SCALE_WORDS = frozenset({"hundred", "thousand", "million", "billion"})
_SMALL_NUMBER_WORDS = frozenset(_ONES[1:] + _TENS[2:])


def _drop_number_and(words: list[str]) -> list[str]:
    """Drop the "and" of "three hundred and fifty", the only place a number word sequence has one."""
    return [
        word
        for i, word in enumerate(words)
        if not (
            word == "and"
            and 0 < i < len(words) - 1
            and words[i - 1] in _SCALE_WORDS
            and words[i + 1] in _SMALL_NUMBER_WORDS
        )
    ]


@functools.cache
def _american_spellings() -> Mapping[str, str]:
    mapping: dict[str, str] = json.loads(
        files("whisper_normalizer").joinpath("normalizers/english.json").read_text(encoding="utf-8")
    )
    return mapping


def normalise_words(text: str) -> list[str]:
    """Lower-case word tokens with punctuation removed and numbers spelled out."""
    out: list[str] = []
    for raw in text.replace("-", " ").replace("—", " ").split():
        token = raw.lower().strip(".,;:!?\"“”()[]{}…'’")
        unit = None
        if token and token[0] in _CURRENCY:
            unit, token = _CURRENCY[token[0]], token[1:]
        percent = token.endswith("%")
        token = token.rstrip("%")
        if _NUMBER.match(token):
            out += _number_words(token)
        elif match := _ORDINAL_SUFFIX.match(token):
            out += int_to_words(int(match.group(1)))  # close enough for scoring: "4th" ~ "four"
        else:
            token = re.sub(r"[^\w]", "", token)
            if token:
                out.append(_american_spellings().get(token, token))
        if percent:
            out.append("percent")
        if unit:
            out.append(unit)
    return _drop_number_and(out)


def word_error_rate(reference: Iterable[str] | str, hypothesis: Iterable[str] | str) -> float:
    """(substitutions + deletions + insertions) / reference words, after normalising both sides."""
    ref = normalise_words(reference if isinstance(reference, str) else " ".join(reference))
    hyp = normalise_words(hypothesis if isinstance(hypothesis, str) else " ".join(hypothesis))
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)
