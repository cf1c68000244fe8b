"""Split OCR text whose spaces went missing ("Thecouncilmet ontuesday") into words.

RapidOCR often drops the gap between caption words, so OCR spacing is never trusted: every alphabetic chunk is
re-segmented by a small dynamic programme whose pieces are priced by how plausible they are here — a word spoken
in the caption's time window is cheapest, then a frequent dictionary word, then a near miss of a spoken word (a
typo inside glued text), and an unknown piece is priced by its length so a misspelled word stays whole. A long
chunk one edit from a common word ("negglected") stays whole unless the split is clearly cheaper: otherwise a
misheard word ("elected") would make a near miss of its tail ("neg" + "glected") look cheaper than the typo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

from captionqc.crosscheck.checker.lexicon import near_word, zipf

_MAX_PIECE = 24
_TWO_LETTER_MIN_ZIPF = 4.5
_MIN_DICT_ZIPF = 2.5
# A chunk this long that is one edit from a common word costs this much whole: a little more than a near miss of a
# spoken word, far less than an unknown piece of its length. Shorter chunks are too often two glued short words
# that happen to be one edit from a third ("tothe" / "tithe").
_NEAR_WORD_MIN_LEN = 6
_NEAR_WORD_COST = 5.0


@dataclass(frozen=True, slots=True)
class SegmentationVocabulary:
    """Words that make a piece cheap: what was said in the window, plus glossary and NG terms."""

    spoken: frozenset[str]
    extra: frozenset[str] = field(default_factory=frozenset)


@lru_cache(maxsize=65536)
def _dict_cost(piece: str) -> float | None:
    if piece in ("a", "i"):
        return 2.0 + (8.0 - zipf(piece)) * 0.7
    z = zipf(piece)
    if (len(piece) == 2 and z >= _TWO_LETTER_MIN_ZIPF) or (len(piece) >= 3 and z >= _MIN_DICT_ZIPF):
        return 2.0 + (8.0 - z) * 0.7
    return None


def _piece_cost(piece: str, vocab: SegmentationVocabulary, fuzzy_targets: list[str]) -> float:
    if piece in vocab.spoken or piece in vocab.extra:
        return 1.0
    if "'" in piece:
        # An apostrophe belongs inside a known contraction or possessive, never at a piece edge.
        d = _dict_cost(piece) if piece.strip("'") == piece else None
        return d if d is not None else 5.0 + 0.8 * len(piece)
    best = 5.0 + 0.8 * len(piece)
    d = _dict_cost(piece)
    if d is not None:
        best = min(best, d)
    if len(piece) >= 3 and fuzzy_targets:
        limit = 1 if len(piece) <= 6 else 2
        hit = process.extractOne(piece, fuzzy_targets, scorer=OSA.distance, score_cutoff=limit)
        if hit is not None:
            best = min(best, 3.0 + 1.5 * hit[1])
    return best


def split_glued(chunk: str, vocab: SegmentationVocabulary) -> list[str]:
    """Split an alphabetic chunk into words, keeping the chunk's own letters and case."""
    lower = chunk.lower()
    n = len(lower)
    if n < 4 or not lower.replace("'", "").isalpha() or lower in vocab.spoken or lower in vocab.extra:
        return [chunk]
    fuzzy_targets = [w for w in vocab.spoken if len(w) >= 4 and w.isalpha()]
    best = [0.0] + [float("inf")] * n
    back = [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(max(0, end - _MAX_PIECE), end):
            if best[start] == float("inf"):
                continue
            cost = best[start] + _piece_cost(lower[start:end], vocab, fuzzy_targets)
            if cost < best[end]:
                best[end] = cost
                back[end] = start
    if n >= _NEAR_WORD_MIN_LEN and best[n] > _NEAR_WORD_COST and near_word(lower):
        return [chunk]
    cuts: list[int] = []
    end = n
    while end > 0:
        cuts.append(end)
        end = back[end]
    cuts.reverse()
    pieces: list[str] = []
    start = 0
    for cut in cuts:
        pieces.append(chunk[start:cut])
        start = cut
    return pieces
