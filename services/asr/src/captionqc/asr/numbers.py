"""Rejoin the pieces Whisper splits a word into, so the output reads as a person would write it.

Whisper's tokenizer breaks numbers and contractions into tokens that faster-whisper reports as separate words
(" 80" + ",000", " don" + "'t", " 5" + "%"). A piece that does not start with a space continues the previous
word; we join it when a digit, an apostrophe or a currency/percent sign sits at the seam. Other scripts that do
not use spaces are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIGIT_GROUP = re.compile(r"^[.,]\d")
_CURRENCY = frozenset("$£€¥")


@dataclass(frozen=True)
class RawWord:
    """A word as the engine reported it: ``text`` keeps its leading space (a space means a new word)."""

    text: str
    start_s: float
    end_s: float
    probability: float


def _continues(previous: str, piece: str) -> bool:
    if not piece or piece[0].isspace():
        return False
    prev = previous.strip()
    if not prev:
        return False
    return (
        prev[-1].isdigit()
        or piece[0].isdigit()
        or bool(_DIGIT_GROUP.match(piece))
        or piece[0] in "'’%"
        or prev in _CURRENCY
    )


def join_split_words(words: list[RawWord]) -> list[RawWord]:
    """Merge continuation pieces into the word before them; times span both, confidence is the weaker one."""
    joined: list[RawWord] = []
    for word in words:
        if joined and _continues(joined[-1].text, word.text):
            prev = joined[-1]
            joined[-1] = RawWord(
                text=prev.text + word.text,
                start_s=prev.start_s,
                end_s=max(prev.end_s, word.end_s),
                probability=min(prev.probability, word.probability),
            )
        else:
            joined.append(word)
    return joined
