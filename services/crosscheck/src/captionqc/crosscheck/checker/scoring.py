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
from decimal import Decimal, InvalidOperation

from rapidfuzz.distance import OSA

from captionqc.crosscheck.checker.align import Pair, american, equivalent, metaphone, similarity
from captionqc.crosscheck.checker.config import CheckerConfig
from captionqc.crosscheck.checker.context import are_homophones, context_preference
from captionqc.crosscheck.checker.lexicon import best_correction, zipf
from captionqc.crosscheck.checker.normalize import Token
from captionqc.crosscheck.checker.numbers import scale_value
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


def _strong_asr_factor(conf: float) -> float:
    """For disagreements the caption's own text cannot settle (a real word, a number), the ASR's word is the only
    evidence against the caption, so its confidence weighs more than for non-words."""
    return 0.25 + 0.75 * conf


# Characters (and pairs) an OCR engine mistakes for each other in caption fonts: "I"/"l"/"1", "rn"/"m", "cl"/"d",
# "vv"/"w", "g"/"q", "0"/"o", "5"/"s". Keys are lowercase, so a capital "I" read as "l" shows as "i"/"l".
_OCR_CONFUSABLE = (
    ("l", "i"), ("i", "l"), ("1", "l"), ("l", "1"), ("1", "i"), ("i", "1"), ("rn", "m"), ("m", "rn"),
    ("cl", "d"), ("d", "cl"), ("vv", "w"), ("w", "vv"), ("g", "q"), ("q", "g"), ("0", "o"), ("o", "0"),
    ("5", "s"), ("s", "5"),
)  # fmt: skip
# Keys next to each other on a QWERTY keyboard: a typist can hit one for the other, so such a pair has a typing
# explanation as well as an OCR one.
_KEY_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_adjacent(a: str, b: str) -> bool:
    if len(a) != 1 or len(b) != 1 or a == b:
        return False
    pos = {ch: (r, c) for r, row in enumerate(_KEY_ROWS) for c, ch in enumerate(row)}
    if a not in pos or b not in pos:
        return False
    (ra, ca), (rb, cb) = sorted((pos[a], pos[b]))
    if ra == rb:
        return abs(ca - cb) == 1
    # Each row sits half a key to the right of the one above: "w" touches "a" and "s", "i" touches "j" and "k".
    return rb == ra + 1 and cb in (ca - 1, ca)


def ocr_confusion(caption_key: str, spoken_key: str) -> tuple[str, str] | None:
    """The one OCR-confusable substitution that turns the spoken word into the caption word, if there is one."""
    for shown, meant in _OCR_CONFUSABLE:
        start = caption_key.find(shown)
        while start >= 0:
            if caption_key[:start] + meant + caption_key[start + len(shown) :] == spoken_key:
                return shown, meant
            start = caption_key.find(shown, start + 1)
    return None


def _ocr_misread_factor(confusion: tuple[str, str] | None, ocr_conf: float) -> float:
    """How far an OCR-confusable difference lowers a finding.

    The OCR channel explains such a difference fully; the typing channel only if the keys are neighbours. The
    OCR's confidence is per caption, so one misread character barely dents it: it scales the discount, it does
    not decide it. A sure OCR (1.0) halves the finding, an unsure one (<= 0.95) cuts it to 0.3.
    """
    if confusion is None:
        return 1.0
    sureness = min(1.0, max(0.0, (ocr_conf - 0.95) / 0.05))
    factor = 0.3 + 0.2 * sureness
    if _keyboard_adjacent(*confusion):
        factor = 0.5 + 0.5 * factor
    return factor


_FUNCTION_WORD_ZIPF = 6.0
_INFLECTIONS = ("s", "es", "ed", "ing", "er", "ers", "ly", "'s")


def _inflection_pair(a: str, b: str) -> bool:
    """One word is the other plus an inflectional ending: a classic ASR slip, rarely a caption typo."""
    short, long_ = sorted((american(a), american(b)), key=len)
    # "close"/"closed" but not "win"/"wind": a bare "d" is an ending only after an "e".
    return any(long_ == short + suffix for suffix in _INFLECTIONS) or (short.endswith("e") and long_ == short + "d")


_SIBLING_ENDINGS = ("s", "es", "d", "ed", "ing", "er", "ers")


def _sibling_inflections(a: str, b: str) -> bool:
    """Two endings on one stem ("charges"/"charged", "walks"/"walked"): the ASR misheard the ending."""
    for ea in _SIBLING_ENDINGS:
        for eb in _SIBLING_ENDINGS:
            if ea != eb and a.endswith(ea) and b.endswith(eb):
                stem = a[: -len(ea)]
                if len(stem) >= 3 and stem == b[: -len(eb)]:
                    return True
    return False


def _onset_differs(a: str, b: str) -> bool:
    """The words differ in their first letter. Typists rarely get the first letter wrong (most misspellings keep
    it), while an ASR often loses or swaps a word's onset ("ground" heard as "round", "day" as "pay")."""
    return bool(a) and bool(b) and a[0] != b[0]


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


def _known_variant(key: str, config: CheckerConfig) -> bool:
    """A word whose British spelling or plural wordfreq under-counts ("centimetres" 2.99): its American form, or
    its singular, is a common word."""
    us = american(key)
    if us != key and zipf(us) >= config.real_word_zipf:
        return True
    for suffix in ("es", "s"):
        if key.endswith(suffix) and len(key) - len(suffix) >= 3:
            stem = key[: -len(suffix)]
            if zipf(stem) >= config.real_word_zipf or zipf(american(stem)) >= config.real_word_zipf:
                return True
    return False


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


def in_caption_case(shown: str, suggestion: str) -> str:
    """The suggestion cased the way the caption cases the word it replaces.

    The ASR capitalises by its own guess ("City Council" for the caption's "city conucil") and the dictionary
    lowercases everything ("tuesday"): the reviewer wants the caption's word with its spelling mended, no more.
    A suggestion with inner capitals ("McDonald") is the speller's own and stays as it is."""
    letters = [ch for ch in shown if ch.isalpha()]
    if not letters or not suggestion[:1].isalpha() or suggestion[1:] != suggestion[1:].lower():
        return suggestion
    if len(letters) > 1 and all(ch.isupper() for ch in letters):
        return suggestion.upper()
    first = suggestion[0].upper() if letters[0].isupper() else suggestion[0].lower()
    return first + suggestion[1:]


def _caption_candidate(
    tok: Token, kind: CheckKind, suggestion: str | None, conf: float, evidence: Evidence
) -> Candidate:
    if suggestion:
        suggestion = in_caption_case(tok.raw, suggestion)
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
    listed: bool,
    spoken_real: bool,
    by_caption: dict[int, list[Token]],
    ev: Evidence,
) -> Candidate:
    """Sound-alike words: the ASR's spelling is its language model's guess, trusted unless context objects.

    Only listed homophones are true sound-alikes; a mere metaphone match ("fit"/"foot", "rain"/"reign" aside)
    collapses vowels, so those pairs are near misses in sound and count for less."""
    prev, nxt = _neighbours((c,), by_caption)
    pref = context_preference(c_word, s_word, prev, nxt)
    ev["homophone"] = True
    ev["listed_homophone"] = listed
    ev["context_preference"] = pref
    conf = (0.78 + 0.1 * pref) if pref >= 0 else 0.35
    if not listed:
        conf *= 0.75
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
    ocr = _ocr_factor(c.confidence)
    factor = _asr_factor(s.confidence) * ocr
    strong = _strong_asr_factor(s.confidence) * ocr
    longest = max(len(ck), len(sk))
    close = dist <= (1 if longest <= 4 else 2) and sim >= 0.5
    confusion = ocr_confusion(ck, sk)
    misread = _ocr_misread_factor(confusion, c.confidence)
    if confusion is not None:
        evidence["ocr_confusable"] = f"{confusion[0]}/{confusion[1]}"

    if numbers:
        if c.is_number and s.is_number:
            scale = _scale_word_after(c, s, by_caption)
            if scale is not None:
                # "4.5 millino" against "4.5 million": the number is right, its scale word is the typo, and the
                # dictionary reports that word on its own.
                return None
            return _caption_candidate(c, CheckKind.NUMBER_MISMATCH, s.raw, 0.92 * strong * misread, evidence)
        # A digit against a word ("4" / "for"): usually an ASR spelling choice, occasionally a real error.
        kind = CheckKind.NUMBER_MISMATCH if c.is_number else CheckKind.WRONG_WORD
        evidence["asr_disagrees"] = True
        return _caption_candidate(c, kind, s.raw, 0.3 * factor, evidence)

    caption_real = ck in vocab.glossary or zc >= config.real_word_zipf or _known_variant(ck, config)
    spoken_real = zs >= config.real_word_zipf or _known_variant(sk, config)
    evidence["caption_is_word"] = caption_real
    if not caption_real:
        # The dictionary's doubt stands on its own: a word the ASR was unsure of (often a clip's first word)
        # can only add to it, never take it away.
        dictionary = _dictionary_confidence(c)
        if close and spoken_real:
            conf = max(0.97 * factor, dictionary)
            return _caption_candidate(c, CheckKind.MISSPELLING, s.raw, conf * misread, evidence)
        suggestion = s.raw if close else best_correction(ck, vocab.glossary_terms)
        conf = max(0.7 * factor, dictionary) if close else dictionary
        if _name_like(c) and not spoken_real:
            conf *= 0.6
        return _caption_candidate(c, CheckKind.MISSPELLING, suggestion, conf * misread, evidence)

    if number_word and not are_homophones(ck, sk):
        # "three" heard as "free": a real caption word against an ASR slip, not a caption error.
        evidence["asr_disagrees"] = True
        return _caption_candidate(c, CheckKind.WRONG_WORD, s.raw, 0.3 * factor, evidence)
    if close and zc < zs - 2.0 and not sounds_alike:
        # wordfreq lists web misspellings ("thier" 2.99): far rarer than the spoken word one edit away.
        return _caption_candidate(c, CheckKind.MISSPELLING, s.raw, 0.9 * factor * misread, evidence)
    listed = are_homophones(ck, sk)
    if listed or (sounds_alike and not close):
        weight = (factor if listed else strong) * misread
        return _homophone(
            c, s, ck, sk, weight, listed=listed, spoken_real=spoken_real, by_caption=by_caption, ev=evidence
        )
    if close:
        # Near misses between real words are where the ASR errs too: function words it swaps ("of"/"on"),
        # endings it drops ("looks" heard as "look"), two-letter differences ("walked"/"worked").
        if _inflection_pair(ck, sk):
            evidence["inflection"] = True
            # The ASR drops unstressed endings far more often than it invents them, so an ending missing from
            # the caption but heard is a likelier caption error than the reverse.
            conf = 0.75 if len(ck) < len(sk) else 0.45
        elif _sibling_inflections(ck, sk):
            # One stem, two endings: neither side is missing an ending, so the weaker of the two scores.
            evidence["inflection"] = True
            conf = 0.45
        elif longest <= 3 and min(zc, zs) >= _FUNCTION_WORD_ZIPF:
            conf, evidence["function_words"] = 0.45, True
        elif dist >= 2:
            conf = 0.6
        else:
            conf = 0.88
        if _onset_differs(ck, sk):
            evidence["onset_differs"] = True
            conf *= 0.6
        if not spoken_real:
            conf = min(conf, 0.4)
        return _caption_candidate(c, CheckKind.WRONG_WORD, s.raw, conf * strong * misread, evidence)
    evidence["asr_disagrees"] = True
    return _caption_candidate(c, CheckKind.WRONG_WORD, s.raw, 0.3 * factor, evidence)


_SCALE_WORDS = ("thousand", "million", "billion", "trillion")


def _scale_word_after(c: Token, s: Token, by_caption: dict[int, list[Token]]) -> str | None:
    """The scale word the spoken number has and the caption's number lacks, when the caption's next word is a
    misspelling of it ("4.5 millino" shown, "4.5 million" said)."""
    if c.caption < 0:
        return None
    words = by_caption.get(c.caption, [])
    if c.position + 1 >= len(words):
        return None
    nxt = words[c.position + 1].key
    try:
        shown, heard = Decimal(c.key), Decimal(s.key)
    except InvalidOperation:
        return None
    for word in _SCALE_WORDS:
        value = scale_value(word)
        if value is not None and shown * value == heard and 0 < OSA.distance(nxt, word) <= 2:
            return word
    return None


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

    for k, pair in enumerate(pairs):
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
                if cand.kind is CheckKind.NUMBER_MISMATCH and _asr_split_number(pairs, k):
                    # The ASR heard two numbers where the caption shows one ("2000 and 2007" for "2027"): it
                    # lost track of the number, so its reading is weak evidence against the caption.
                    cand.evidence["asr_split_number"] = True
                    cand.confidence = _r(cand.confidence * 0.6)
                out.append(cand)
    flush_unheard()
    flush_unshown()
    return _cancel_displaced_omissions(out)


def _asr_split_number(pairs: Sequence[Pair], k: int, reach: int = 2) -> bool:
    """Another spoken number, paired with no caption word, within ``reach`` steps of pair ``k``."""
    for j in range(max(0, k - reach), min(len(pairs), k + reach + 1)):
        p = pairs[j]
        if j != k and not p.caption and any(t.is_number for t in p.spoken):
            return True
    return False


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
