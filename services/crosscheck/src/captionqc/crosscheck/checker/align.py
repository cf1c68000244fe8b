"""Offset estimation and word alignment between the captions and the speech.

One global alignment over the whole clip (not one per caption) so each spoken word is used once even where the
padded caption windows overlap; a spoken word may only pair with a caption word whose (offset-shifted, padded)
caption span contains it, which also keeps the dynamic programme inside a narrow band: linear in clip length.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import jellyfish
from rapidfuzz.distance import Levenshtein

from captionqc.crosscheck.checker.normalize import Token

GAP_COST = 1.0
_OFFSET_VOTE_MARGIN = 0.05
_JOIN_COST = 0.05
_INF = float("inf")

# Apostrophe-less forms that are words in their own right: OCR dropping the apostrophe is not assumed for them,
# since "its"/"it's" and "were"/"we're" are exactly the errors a caption checker exists to catch.
_AMBIGUOUS_WITHOUT_APOSTROPHE = frozenset(
    {"its", "were", "well", "hell", "shell", "wed", "ill", "id", "cant", "wont", "lets", "shed", "hed", "whose"}
)
_S_IS = frozenset({"it", "that", "what", "there", "here", "he", "she", "who", "where", "how", "when", "why"})
_SUFFIXES = {"n't": "not", "'re": "are", "'ve": "have", "'ll": "will", "'d": "would", "'m": "am"}
_SPECIAL = {"can't": ("can", "not"), "won't": ("will", "not"), "shan't": ("shall", "not"), "let's": ("let", "us")}


@lru_cache(maxsize=8192)
def expansion(key: str) -> tuple[str, str] | None:
    """'don't' → ('do', 'not'); None when ``key`` is not a contraction we can expand unambiguously."""
    if key in _SPECIAL:
        return _SPECIAL[key]
    for suffix, full in _SUFFIXES.items():
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)], full
    if key.endswith("'s") and key[:-2] in _S_IS:
        return key[:-2], "is"
    return None


@lru_cache(maxsize=65536)
def metaphone(key: str) -> str:
    return str(jellyfish.metaphone(key.replace("'", ""))) if key.replace("'", "").isalpha() else key


# British → American spellings, anchored at word endings so that "hour", "four", "street" or "filled" are untouched.
_BRITISH_AMERICAN = tuple(
    (re.compile(pattern), repl)
    for pattern, repl in (
        (r"(?<=[a-z]{3})is(e|es|ed|ing|ation|ations|er|ers)$", r"iz\1"),
        (r"(?<=[a-z]{2})ys(e|es|ed|ing)$", r"yz\1"),
        (r"(?<=[a-z]{2}[^t])our(s|ed|ing|ite|ites|able|er|ers|ful)?$", r"or\1"),
        (r"(?<=[a-z]{2})tre(s|d)?$", r"ter\1"),
        (r"(?<=[a-z]{2})ell(ed|ing|er|ers)$", r"el\1"),
        (r"(?<=[a-z]{2})ogue(s)?$", r"og\1"),
        (r"(?<=[a-z]{2}[fc])ence(s)?$", r"ense\1"),
    )
)


@lru_cache(maxsize=1)
def _american_spellings() -> dict[str, str]:
    """Whisper's English normaliser's list: 1,739 British spellings with their American forms."""
    text = files("whisper_normalizer").joinpath("normalizers/english.json").read_text(encoding="utf-8")
    mapping: dict[str, str] = json.loads(text)
    return mapping


@lru_cache(maxsize=65536)
def american(key: str) -> str:
    """Symmetric (both sides are mapped), so "organisers" meets "organizers" and "councillors" "councilors": the
    curated list first, then suffix rules for words it lacks."""
    listed = _american_spellings().get(key)
    if listed is not None:
        return listed
    for pattern, repl in _BRITISH_AMERICAN:
        key = pattern.sub(repl, key)
    return key


def equivalent(a: str, b: str) -> bool:
    """Same word for the checker: equal keys, British/American spellings, or an apostrophe OCR dropped."""
    if a == b:
        return True
    if a.isalpha() and b.isalpha():
        return american(a) == american(b)
    if ("'" in a) == ("'" in b):
        return False
    plain_a, plain_b = a.replace("'", ""), b.replace("'", "")
    bare = a if "'" not in a else b
    return plain_a == plain_b and bare not in _AMBIGUOUS_WITHOUT_APOSTROPHE


def _joined_equivalent(two: tuple[str, str], one: str) -> bool:
    return equivalent(two[0] + two[1], one) or expansion(one) == two


@lru_cache(maxsize=65536)
def similarity(a: str, b: str) -> float:
    """0..1 likeness of two keys: spelling, raised to 0.8 when they sound alike."""
    sim = float(Levenshtein.normalized_similarity(a, b))
    if a.isalpha() and b.isalpha() and metaphone(a) == metaphone(b):
        sim = max(sim, 0.8)
    return sim


def substitution_cost(c: Token, s: Token) -> float:
    if equivalent(c.key, s.key):
        return 0.0
    sim = similarity(c.key, s.key)
    if c.is_number and s.is_number:
        sim = max(sim, 0.5)
    # Two unrelated words cost 1.6 < two gaps (2.0): a word in the same place is most likely a replacement.
    return 0.4 + 1.2 * (1.0 - sim)


@dataclass(frozen=True, slots=True)
class Pair:
    """One step of the alignment: caption tokens (0–2) against spoken tokens (0–2)."""

    caption: tuple[Token, ...]
    spoken: tuple[Token, ...]

    @property
    def matched(self) -> bool:
        return (
            bool(self.caption)
            and bool(self.spoken)
            and (len(self.caption) + len(self.spoken) > 2 or equivalent(self.caption[0].key, self.spoken[0].key))
        )


@dataclass(frozen=True, slots=True)
class CaptionSpan:
    start_s: float
    end_s: float
    text_key: str  # the caption's token keys run together: spacing-proof substring search


def estimate_offset(
    captions: Sequence[CaptionSpan], spoken: Sequence[Token], max_offset_s: float, step_s: float
) -> float:
    """Seconds the speech runs behind the captions (negative: ahead), by voting of words found in both."""
    if not captions or not spoken or max_offset_s <= 0:
        return 0.0
    mids = [t.mid_s for t in spoken]
    candidates: list[tuple[float, float, list[float]]] = []
    for cap in captions:
        lo = bisect.bisect_left(mids, cap.start_s - max_offset_s)
        hi = bisect.bisect_right(mids, cap.end_s + max_offset_s)
        hits = [mids[j] for j in range(lo, hi) if len(spoken[j].key) >= 3 and spoken[j].key in cap.text_key]
        if hits:
            candidates.append((cap.start_s, cap.end_s, hits))
    if not candidates:
        return 0.0
    steps = round(max_offset_s / step_s)
    scores: list[tuple[float, int]] = []
    for k in range(-steps, steps + 1):
        off = k * step_s
        score = sum(1 for s, e, hits in candidates for m in hits if s + off <= m <= e + off)
        scores.append((off, score))
    # Move off zero only when clearly better: OCR segment times are loose by a second or more (change detection
    # lags), which makes the vote flat; a real offset wins by far more than this margin.
    best = max(score for _, score in scores) * (1.0 - _OFFSET_VOTE_MARGIN)
    # The good scores form plateaus: take the middle of the plateau nearest to zero.
    runs: list[list[float]] = []
    for off, score in scores:
        if score >= best:
            if runs and abs(runs[-1][-1] + step_s - off) < step_s / 2:
                runs[-1].append(off)
            else:
                runs.append([off])
    centres = [(r[0] + r[-1]) / 2.0 for r in runs]
    nearest: float = min(centres, key=abs)
    return round(nearest, 3)


def align(
    caption_tokens: Sequence[Token],
    spans: Sequence[CaptionSpan],
    spoken: Sequence[Token],
    offset_s: float,
    padding_s: float,
) -> list[Pair]:
    """Edit alignment of caption tokens (in caption order) with spoken tokens (sorted by time)."""
    n, m = len(caption_tokens), len(spoken)
    mids = [t.mid_s for t in spoken]
    compat: list[tuple[int, int]] = []
    for tok in caption_tokens:
        span = spans[tok.caption]
        compat.append(
            (
                bisect.bisect_left(mids, span.start_s + offset_s - padding_s),
                bisect.bisect_right(mids, span.end_s + offset_s + padding_s),
            )
        )
    lo_raw = [0] + [a for a, _ in compat]
    hi_raw = [0] + [b for _, b in compat]
    lo = lo_raw[:]
    for i in range(n - 1, -1, -1):
        lo[i] = min(lo[i], lo[i + 1])
    hi = hi_raw[:]
    for i in range(1, n + 1):
        hi[i] = max(hi[i], hi[i - 1])
    hi[n] = m
    for i in range(1, n + 1):
        lo[i] = min(lo[i], hi[i - 1])

    # cost[i][j - lo[i]], move[i][j - lo[i]]: 1 = speech gap, 2 = caption gap, 3 = pair, 4 = 2:1, 5 = 1:2
    cost: list[list[float]] = []
    move: list[list[int]] = []
    for i in range(n + 1):
        width = hi[i] - lo[i] + 1
        row = [_INF] * width
        mv = [0] * width
        for j in range(lo[i], hi[i] + 1):
            best, how = (_INF, 0) if (i or j) else (0.0, 0)
            if j - 1 >= lo[i]:
                c = row[j - 1 - lo[i]] + GAP_COST
                if c < best:
                    best, how = c, 1
            if i >= 1:
                prev, plo, phi = cost[i - 1], lo[i - 1], hi[i - 1]
                if plo <= j <= phi:
                    c = prev[j - plo] + GAP_COST
                    if c < best:
                        best, how = c, 2
                a, b = compat[i - 1]
                if j >= 1 and a <= j - 1 < b and plo <= j - 1 <= phi:
                    c = prev[j - 1 - plo] + substitution_cost(caption_tokens[i - 1], spoken[j - 1])
                    if c < best:
                        best, how = c, 3
                    if j >= 2 and a <= j - 2 and plo <= j - 2 <= phi:
                        two = (spoken[j - 2].key, spoken[j - 1].key)
                        if _joined_equivalent(two, caption_tokens[i - 1].key):
                            c = prev[j - 2 - plo] + _JOIN_COST
                            if c < best:
                                best, how = c, 5
                if i >= 2 and j >= 1:
                    a2, b2 = compat[i - 2]
                    pp, pplo, pphi = cost[i - 2], lo[i - 2], hi[i - 2]
                    if a2 <= j - 1 < b2 and a <= j - 1 < b and pplo <= j - 1 <= pphi:
                        two = (caption_tokens[i - 2].key, caption_tokens[i - 1].key)
                        if _joined_equivalent(two, spoken[j - 1].key):
                            c = pp[j - 1 - pplo] + _JOIN_COST
                            if c < best:
                                best, how = c, 4
            row[j - lo[i]] = best
            mv[j - lo[i]] = how
        cost.append(row)
        move.append(mv)

    pairs: list[Pair] = []
    i, j = n, m
    while i > 0 or j > 0:
        how = move[i][j - lo[i]]
        if how == 1:
            pairs.append(Pair((), (spoken[j - 1],)))
            j -= 1
        elif how == 2:
            pairs.append(Pair((caption_tokens[i - 1],), ()))
            i -= 1
        elif how == 3:
            pairs.append(Pair((caption_tokens[i - 1],), (spoken[j - 1],)))
            i, j = i - 1, j - 1
        elif how == 4:
            pairs.append(Pair((caption_tokens[i - 2], caption_tokens[i - 1]), (spoken[j - 1],)))
            i, j = i - 2, j - 1
        elif how == 5:
            pairs.append(Pair((caption_tokens[i - 1],), (spoken[j - 2], spoken[j - 1])))
            i, j = i - 1, j - 2
        else:  # pragma: no cover - the band construction guarantees a path
            raise AssertionError(f"alignment has no path at ({i}, {j})")
    pairs.reverse()
    return pairs
