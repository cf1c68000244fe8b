"""Turn the alignment into scored candidate findings.

Each mismatch is judged on evidence that is kept with the finding: how far the caption word is from the spoken
one in spelling (edit distance) and in sound (metaphone), whether the caption word is a real word (wordfreq), how
sure the ASR was of its word, how sure the OCR was of the caption, and the job's glossary / NG words.

The main guard against false alarms: the ASR is wrong about one word in ten. When the caption shows a common real
word and the ASR heard something that neither looks nor sounds like it, the caption is far more likely right
than wrong, so such a pair scores below the reporting threshold ("asr_disagrees" in the evidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import OSA

from captionqc.crosscheck.checker.align import Pair, american, equivalent, metaphone, similarity
from captionqc.crosscheck.checker.config import CheckerConfig
from captionqc.crosscheck.checker.context import are_homophones, context_preference
from captionqc.crosscheck.checker.lexicon import best_correction, zipf
from captionqc.crosscheck.checker.normalize import Token
from captionqc.schemas.events import CheckKind

Evidence = dict[str, str | float | int | bool | None]


@dataclass(slots=True)
class Candidate:
    """A possible finding before the confidence filter and id assignment."""

    kind: CheckKind
    caption: int  # caption index, or -1 for speech no caption covers
    position: int  # token position in the caption (or speech) for stable ids
    start_s: float
    end_s: float
    word: str
    suggestion: str | None
    confidence: float
    evidence: Evidence = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    glossary: frozenset[str]
    ng_words: frozenset[str]
    glossary_terms: tuple[str, ...] = ()


def _r(x: float) -> float:
    return round(float(x), 3)


def _asr_factor(conf: float) -> float:
    return 0.4 + 0.6 * conf


_FUNCTION_WORD_ZIPF = 6.0
_INFLECTIONS = ("s", "es", "ed", "ing", "er", "ers", "ly", "'s")


def _inflection_pair(a: str, b: str) -> bool:
    """One word is the other plus an inflectional ending: a classic ASR slip, rarely a caption typo."""
    short, long_ = sorted((american(a), american(b)), key=len)
    # "close"/"closed" but not "win"/"wind": a bare "d" is an ending only after an "e".
    return any(long_ == short + suffix for suffix in _INFLECTIONS) or (short.endswith("e") and long_ == short + "d")


def _looks_inflected(key: str) -> bool:
    """wordfreq under-counts some plurals and derived forms ("forecasters" 2.6): accept them via their stem."""
    for suffix in ("s", "es", "ed", "ing", "ers", "er", "ly"):
        if key.endswith(suffix) and len(key) - len(suffix) >= 3 and zipf(key[: -len(suffix)]) >= 3.5:
            return True
    return False


def _ocr_factor(conf: float) -> float:
    return 0.8 + 0.2 * conf


def _name_like(tok: Token) -> bool:
    # Capitalised mid-sentence and unknown to the dictionary: a name the ASR cannot be trusted to spell.
    return tok.capitalised and not tok.sentence_initial


def _is_real(key: str, vocab: Vocabulary, config: CheckerConfig) -> bool:
    return key in vocab.glossary or zipf(key) >= config.real_word_zipf


def _dictionary_confidence(tok: Token) -> float:
    z = zipf(tok.key)
    # A word wordfreq has seen fairly often (Zipf 2–3) is as likely a rare word as a common misspelling.
    conf = 0.8 if z == 0 else 0.7 if z < 2.0 else 0.45
    if _looks_inflected(tok.key):
        conf = min(conf, 0.4)
    if _name_like(tok):
        conf *= 0.6
    return conf * _ocr_factor(tok.confidence)


def _neighbours(tokens: Sequence[Token], by_caption: dict[int, list[Token]]) -> tuple[str | None, str | None]:
    words = by_caption[tokens[0].caption]
    first, last = tokens[0].position, tokens[-1].position
    prev = words[first - 1].key if first > 0 else None
    nxt = words[last + 1].key if last + 1 < len(words) else None
    return prev, nxt


def _caption_candidate(
    tok: Token, kind: CheckKind, suggestion: str | None, conf: float, evidence: Evidence
) -> Candidate:
    return Candidate(
        kind, tok.caption, tok.position, tok.start_s, tok.end_s, tok.raw, suggestion, _r(min(1.0, conf)), evidence
    )


def _homophone(
    c: Token,
    s: Token,
    c_word: str,
    s_word: str,
    factor: float,
    *,
    spoken_real: bool,
    by_caption: dict[int, list[Token]],
    ev: Evidence,
) -> Candidate:
    """Sound-alike words: the ASR's spelling is its language model's guess, trusted unless context objects."""
    prev, nxt = _neighbours((c,), by_caption)
    pref = context_preference(c_word, s_word, prev, nxt)
    ev["homophone"] = True
    ev["context_preference"] = pref
    conf = (0.78 + 0.1 * pref) if pref >= 0 else 0.35
    if not spoken_real:
        conf *= 0.6
    return _caption_candidate(c, CheckKind.WRONG_WORD, s.raw, conf * factor, ev)


def score_pair(
    c: Token, s: Token, vocab: Vocabulary, config: CheckerConfig, by_caption: dict[int, list[Token]]
) -> Candidate | None:
    """A caption word paired with a different spoken word."""
    if equivalent(c.key, s.key) or c.key in vocab.glossary:
        return None
    ck, sk = c.key, s.key
    numbers = c.is_number or s.is_number
    number_word = False
    if numbers and not (c.is_number and s.is_number) and c.raw.isalpha() and s.raw.isalpha():
        # A number word against a plain word ("two"/"too", "seconnd"/"second"): judged as words.
        ck, sk, numbers, number_word = c.raw.lower(), s.raw.lower(), False, True
    dist = int(OSA.distance(ck, sk))
    sim = similarity(ck, sk)
    sounds_alike = metaphone(ck) == metaphone(sk) or are_homophones(ck, sk)
    zc, zs = zipf(ck), zipf(sk)
    evidence: Evidence = {
        "spoken": s.raw,
        "spoken_start_s": _r(s.start_s),
        "edit_distance": dist,
        "similarity": _r(sim),
        "sounds_alike": sounds_alike,
        "caption_zipf": zc,
        "spoken_zipf": zs,
        "asr_confidence": _r(s.confidence),
        "ocr_confidence": _r(c.confidence),
    }
    factor = _asr_factor(s.confidence) * _ocr_factor(c.confidence)
    longest = max(len(ck), len(sk))
    close = dist <= (1 if longest <= 4 else 2) and sim >= 0.5

    if numbers:
        if c.is_number and s.is_number:
            return _caption_candidate(c, CheckKind.NUMBER_MISMATCH, s.raw, 0.92 * factor, evidence)
        # A digit against a word ("4" / "for"): usually an ASR spelling choice, occasionally a real error.
        kind = CheckKind.NUMBER_MISMATCH if c.is_number else CheckKind.WRONG_WORD
        evidence["asr_disagrees"] = True
        return _caption_candidate(c, kind, s.raw, 0.3 * factor, evidence)

    caption_real = ck in vocab.glossary or zc >= config.real_word_zipf
    spoken_real = zs >= config.real_word_zipf
    evidence["caption_is_word"] = caption_real
    if not caption_real:
        if close and spoken_real:
            return _caption_candidate(c, CheckKind.MISSPELLING, s.raw, 0.97 * factor, evidence)
        suggestion = s.raw if close else best_correction(ck, vocab.glossary_terms)
        conf = 0.7 * factor if close else _dictionary_confidence(c)
        if _name_like(c) and not spoken_real:
            conf *= 0.6
        return _caption_candidate(c, CheckKind.MISSPELLING, suggestion, conf, evidence)

    if number_word and not are_homophones(ck, sk):
        # "three" heard as "free": a real caption word against an ASR slip, not a caption error.
        evidence["asr_disagrees"] = True
        return _caption_candidate(c, CheckKind.WRONG_WORD, s.raw, 0.3 * factor, evidence)
    if close and zc < zs - 2.0 and not sounds_alike:
        # wordfreq lists web misspellings ("thier" 2.99): far rarer than the spoken word one edit away.
        return _caption_candidate(c, CheckKind.MISSPELLING, s.raw, 0.9 * factor, evidence)
    homophone = are_homophones(ck, sk) or (sounds_alike and not close)
    if homophone:
        return _homophone(c, s, ck, sk, factor, spoken_real=spoken_real, by_caption=by_caption, ev=evidence)
    if close:
        # Near misses between real words are where the ASR errs too: function words it swaps ("of"/"on"),
        # endings it drops ("looks" heard as "look"), two-letter differences ("walked"/"worked").
        if _inflection_pair(ck, sk):
            evidence["inflection"] = True
            # The ASR drops unstressed endings far more often than it invents them, so an ending missing from
            # the caption but heard is a likelier caption error than the reverse.
            conf = 0.75 if len(ck) < len(sk) else 0.45
        elif longest <= 3 and min(zc, zs) >= _FUNCTION_WORD_ZIPF:
            conf, evidence["function_words"] = 0.45, True
        elif dist >= 2:
            conf = 0.6
        else:
            conf = 0.88
        if not spoken_real:
            conf = min(conf, 0.4)
        return _caption_candidate(c, CheckKind.WRONG_WORD, s.raw, conf * factor, evidence)
    evidence["asr_disagrees"] = True
    return _caption_candidate(c, CheckKind.WRONG_WORD, s.raw, 0.3 * factor, evidence)


def score_unheard(c: Token, vocab: Vocabulary, config: CheckerConfig) -> Candidate | None:
    """A caption word with no spoken counterpart: only the dictionary can judge it."""
    if c.key in vocab.glossary or c.is_number or _is_real(c.key, vocab, config):
        return None
    evidence: Evidence = {
        "spoken": None,
        "caption_zipf": zipf(c.key),
        "caption_is_word": False,
        "ocr_confidence": _r(c.confidence),
    }
    return _caption_candidate(
        c, CheckKind.MISSPELLING, best_correction(c.key, vocab.glossary_terms), _dictionary_confidence(c), evidence
    )


def _omission_confidence(length: int, config: CheckerConfig) -> float:
    if length < config.min_omission_words:
        return 0.0
    return min(0.9, 0.6 + 0.1 * (length - config.min_omission_words))


def score_alignment(
    pairs: Sequence[Pair],
    caption_tokens: Sequence[Token],
    vocab: Vocabulary,
    config: CheckerConfig,
    caption_at: dict[int, tuple[float, float]],
) -> list[Candidate]:
    by_caption: dict[int, list[Token]] = {}
    for t in caption_tokens:
        by_caption.setdefault(t.caption, []).append(t)
    out: list[Candidate] = []
    heard_anything = any(p.spoken for p in pairs)
    unheard: list[Token] = []
    unshown: list[Token] = []

    def flush_unheard() -> None:
        # With no speech at all there is nothing to compare against: the ASR heard nothing, or there is no voice.
        if unheard and heard_anything:
            conf = _omission_confidence(len(unheard), config)
            first = unheard[0]
            start, end = caption_at[first.caption]
            out.append(
                Candidate(
                    CheckKind.CAPTION_NOT_SPOKEN, first.caption, first.position, start, end,
                    " ".join(t.raw for t in unheard)[:256], None, _r(conf),
                    {"words": len(unheard), "ocr_confidence": _r(min(t.confidence for t in unheard))},
                )
            )  # fmt: skip
        unheard.clear()

    def flush_unshown() -> None:
        sure = [t for t in unshown if t.confidence >= config.min_asr_confidence_for_omission]
        if sure:
            conf = _omission_confidence(len(sure), config)
            out.append(
                Candidate(
                    CheckKind.SPEECH_NOT_CAPTIONED, -1, sure[0].position, sure[0].start_s, sure[-1].end_s,
                    " ".join(t.raw for t in sure)[:256], " ".join(t.raw for t in sure)[:256], _r(conf),
                    {"words": len(sure), "asr_confidence": _r(min(t.confidence for t in sure))},
                )
            )  # fmt: skip
        unshown.clear()

    for pair in pairs:
        if pair.caption and not pair.spoken:
            c = pair.caption[0]
            cand = score_unheard(c, vocab, config)
            if cand is not None:
                flush_unheard()
                out.append(cand)
            elif c.key not in vocab.glossary:
                if unheard and unheard[-1].caption != c.caption:
                    flush_unheard()
                unheard.append(c)
            continue
        flush_unheard()
        if pair.spoken and not pair.caption:
            unshown.append(pair.spoken[0])
            continue
        flush_unshown()
        if len(pair.caption) == 1 and len(pair.spoken) == 1:
            cand = score_pair(pair.caption[0], pair.spoken[0], vocab, config, by_caption)
            if cand is not None:
                out.append(cand)
    flush_unheard()
    flush_unshown()
    return _cancel_displaced_omissions(out)


_DISPLACED_WITHIN_S = 5.0


def _cancel_displaced_omissions(cands: list[Candidate]) -> list[Candidate]:
    """Words "not spoken" in one caption and "not captioned" a moment away are the same words, misplaced in time
    (OCR segment times can lag the screen by seconds): neither is an omission."""
    unheard = [c for c in cands if c.kind is CheckKind.CAPTION_NOT_SPOKEN]
    unshown = [c for c in cands if c.kind is CheckKind.SPEECH_NOT_CAPTIONED]
    dropped: set[int] = set()
    for a in unheard:
        words_a = set(a.word.lower().split())
        for b in unshown:
            words_b = set((b.suggestion or "").lower().split())
            near = abs(a.start_s - b.start_s) <= _DISPLACED_WITHIN_S or abs(a.end_s - b.end_s) <= _DISPLACED_WITHIN_S
            if near and len(words_a & words_b) >= 0.5 * min(len(words_a), len(words_b)):
                dropped.update((id(a), id(b)))
    return [c for c in cands if id(c) not in dropped]
