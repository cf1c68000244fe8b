"""The English word list (wordfreq) as Zipf frequencies, plus dictionary corrections for the baseline and for
misspellings that no spoken word explains."""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cache

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

_LETTERS = "abcdefghijklmnopqrstuvwxyz'"
# Corrections are searched among this many of the most frequent words: rarer ones are rarely meant.
_CORRECTION_VOCABULARY = 60_000


@cache
def _frequencies() -> dict[str, float]:
    # Loaded once per process (~0.25 s); wordfreq itself keeps the file cached too.
    import wordfreq

    return dict(wordfreq.get_frequency_dict("en"))


@cache
def _correction_words() -> tuple[list[str], dict[str, float]]:
    freqs = _frequencies()
    top = sorted((w for w in freqs if w.isalpha() and w.isascii()), key=lambda w: -freqs[w])
    words = top[:_CORRECTION_VOCABULARY]
    return words, {w: zipf(w) for w in words}


def zipf(word: str) -> float:
    """Zipf frequency of a lowercase word (0 if wordfreq has never seen it)."""
    f = _frequencies().get(word)
    if not f:
        return 0.0
    return round(math.log10(f) + 9.0, 2)


def warm_up() -> None:
    """Load the word lists now rather than inside the first check."""
    _correction_words()


def _edits1(word: str) -> set[str]:
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = [a + b[1:] for a, b in splits if b]
    transposes = [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    replaces = [a + c + b[1:] for a, b in splits if b for c in _LETTERS]
    inserts = [a + c + b for a, b in splits for c in _LETTERS]
    return set(deletes + transposes + replaces + inserts)


def near_word(word: str, min_zipf: float = 3.0) -> bool:
    """Whether ``word`` is one edit (a letter dropped, doubled, swapped or changed) from a common word."""
    return any(zipf(c) >= min_zipf for c in _edits1(word) if c != word)


def best_correction(word: str, extra: Iterable[str] = (), min_zipf: float = 3.0) -> str | None:
    """The most frequent word one edit away (then two), or None. ``extra`` adds glossary terms as candidates."""
    extras = {e.lower() for e in extra}
    candidates = [c for c in _edits1(word) if c != word and (zipf(c) >= min_zipf or c in extras)]
    if candidates:
        return max(candidates, key=lambda c: (c in extras, zipf(c)))
    words, zipfs = _correction_words()
    found = process.extract(word, words, scorer=Levenshtein.distance, score_cutoff=2, limit=20)
    close = [(dist, -zipfs[w], w) for w, dist, _ in found if w != word and zipfs[w] >= min_zipf]
    for e in extras:
        if Levenshtein.distance(word, e) <= 2:
            close.append((int(Levenshtein.distance(word, e)), -99.0, e))
    if not close:
        return None
    return min(close)[2]
