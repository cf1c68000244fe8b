"""Caption text and spoken words as comparable tokens.

Both sides go through the same rules so that they meet in the middle: lowercase, punctuation stripped, curly
apostrophes straightened (but kept: "its" vs "it's" is a real caption error), hyphenated words split, numbers in
digits or words reduced to one key ("80,000" = "eighty thousand" = Whisper's " 80" + ",000"), "%" read as
"percent" and "$5" as "5 dollars".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from captionqc.crosscheck.checker.numbers import NUMBER_WORDS, digit_key, scale_value, words_to_key
from captionqc.schemas.events import TimedWord

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"})
_SPLITTERS = re.compile(r"[\s\-‐‑‒–—―/]+")
_EDGE_PUNCT = "\"“”«»()[]{}<>.,;:!?…*_#|~^=+'"
_WORD = re.compile(r"^[a-z0-9']+$")
_NUMERIC_PIECE = re.compile(r"^[,.]\d")
_HAS_DIGIT = re.compile(r"\d")
_LETTER_DIGIT_RUNS = re.compile(r"[^\W\d_]+|[\d][\d,.]*\d|\d")
_ORDINAL_END = re.compile(r"^[\d,]+(st|nd|rd|th|s)$", re.IGNORECASE)
# "$5" is said "five dollars": the symbol becomes the word after the number on both sides.
_CURRENCIES = {"$": "dollars", "£": "pounds", "€": "euros", "¥": "yen"}


def _currency_symbol(chunk: str) -> str:
    return next((ch for ch in chunk if ch in _CURRENCIES), "$")


@dataclass(frozen=True, slots=True)
class Token:
    """One comparable word of a caption or of the speech."""

    key: str  # what is compared: lowercase, no punctuation, numbers canonical
    raw: str  # as shown or heard, for findings
    start_s: float
    end_s: float
    confidence: float
    caption: int  # index of the caption segment; -1 for spoken tokens
    position: int  # index within its caption (or within the speech)
    is_number: bool
    capitalised: bool = False
    sentence_initial: bool = False

    @property
    def mid_s(self) -> float:
        return (self.start_s + self.end_s) / 2.0


@dataclass(frozen=True, slots=True)
class _Piece:
    key: str
    raw: str
    start_s: float
    end_s: float
    confidence: float
    number: bool
    capitalised: bool
    sentence_initial: bool


def clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)


def _chunk_pieces(chunk: str, sentence_initial: bool, start: float, end: float, conf: float) -> list[_Piece]:
    """One whitespace/hyphen-free chunk → pieces (usually one; "$5" and "5%" give two)."""
    core = chunk.strip(_EDGE_PUNCT)
    if not core:
        return []
    cap = core[0].isupper()
    out: list[_Piece] = []
    currency = _CURRENCIES.get(core[0])
    percent = core.endswith("%")
    core = core.strip("$£€¥%").strip(_EDGE_PUNCT)
    if not core:
        return []
    dk = digit_key(core.lower())
    if dk is not None:
        out.append(_Piece(dk, chunk.strip(_EDGE_PUNCT), start, end, conf, True, False, sentence_initial))
    else:
        key = core.lower()
        if key.endswith("'") or key.startswith("'"):
            key = key.strip("'")
        key = "".join(ch for ch in key if ch.isalnum() or ch == "'")
        if not key:
            return []
        out.append(_Piece(key, core, start, end, conf, False, cap, sentence_initial))
    if currency:
        out.append(_Piece(currency, _currency_symbol(chunk), start, end, conf, False, False, False))
    if percent:
        out.append(_Piece("percent", "%", start, end, conf, False, False, False))
    return out


def _merge_numbers(pieces: list[_Piece]) -> list[_Piece]:
    """Number words → one digit key; "80 thousand" → 80000; "per cent" → percent."""
    out: list[_Piece] = []
    i = 0
    while i < len(pieces):
        p = pieces[i]
        if p.key in NUMBER_WORDS:
            parsed = words_to_key([q.key for q in pieces[i:]])
            if parsed is not None:
                key, used = parsed
                span = pieces[i : i + used]
                out.append(_merge(span, key))
                i += used
                continue
        if p.number and not p.key[-1:].isalpha():
            # "$3.5 million": the "$" piece sits between the number and its scale word.
            dollar = i + 1 < len(pieces) and pieces[i + 1].raw in _CURRENCIES
            j = i + 2 if dollar else i + 1
            scale = scale_value(pieces[j].key) if j < len(pieces) else None
            if scale is not None:
                dk = digit_key(format(Decimal(p.key) * scale, "f"))
                if dk is not None:
                    out.append(_merge([p, pieces[j]], dk))
                    if dollar:
                        out.append(pieces[i + 1])
                    i = j + 1
                    continue
        if p.key == "per" and i + 1 < len(pieces) and pieces[i + 1].key == "cent":
            out.append(_merge(pieces[i : i + 2], "percent", number=False))
            i += 2
            continue
        out.append(p)
        i += 1
    return out


def _merge(span: Sequence[_Piece], key: str, *, number: bool = True) -> _Piece:
    return _Piece(
        key=key,
        raw=" ".join(q.raw for q in span),
        start_s=span[0].start_s,
        end_s=span[-1].end_s,
        confidence=min(q.confidence for q in span),
        number=number,
        capitalised=span[0].capitalised,
        sentence_initial=span[0].sentence_initial,
    )


def tokenise_caption(
    text: str,
    *,
    caption: int,
    start_s: float,
    end_s: float,
    confidence: float,
    split: Callable[[str], list[str]] | None = None,
) -> list[Token]:
    """Caption text → tokens; ``split`` re-segments alphabetic chunks whose spaces OCR may have lost."""
    pieces: list[_Piece] = []
    initial = True
    for chunk in _SPLITTERS.split(clean(text)):
        if not chunk:
            continue
        core = chunk.strip(_EDGE_PUNCT)
        parts = [chunk]
        if split is not None:
            # Glued text may run into a number ("summerof2027"): letters and digits are split apart first.
            runs = _LETTER_DIGIT_RUNS.findall(core) if _HAS_DIGIT.search(core) else [core]
            if len(runs) > 1 and all(len(r) >= 2 or r.isdigit() for r in runs) and not _ORDINAL_END.match(core):
                parts = [p for r in runs for p in (split(r) if r.replace("'", "").isalpha() else [r])]
            elif core.replace("'", "").isalpha():
                parts = split(core)
        for j, part in enumerate(parts):
            pieces.extend(_chunk_pieces(part, initial and j == 0, start_s, end_s, confidence))
        initial = chunk.rstrip("\"'”)").endswith((".", "!", "?", ":"))
    return [
        Token(p.key, p.raw, p.start_s, p.end_s, p.confidence, caption, i, p.number, p.capitalised,
              p.sentence_initial)
        for i, p in enumerate(_merge_numbers(pieces))
    ]  # fmt: skip


def join_whisper_pieces(words: Sequence[TimedWord]) -> list[tuple[str, float, float, float]]:
    """Whisper splits numbers (" 80" + ",000", " 3" + ".5") and symbols ("$" + "5", "5" + "%"): glue them back."""
    out: list[tuple[str, float, float, float]] = []
    for w in sorted(words, key=lambda w: (w.start_s, w.end_s)):
        text = clean(w.word).strip()
        if not text:
            continue
        if out:
            prev, p_start, p_end, p_conf = out[-1]
            glue = (
                (_NUMERIC_PIECE.match(text) and prev[-1:].isdigit())
                or (text in {"%", "%.", "%,"} and prev[-1:].isdigit())
                or prev in _CURRENCIES
            )
            if glue:
                out[-1] = (prev + text, p_start, max(p_end, w.end_s), min(p_conf, w.confidence))
                continue
        out.append((text, w.start_s, w.end_s, w.confidence))
    return out


def tokenise_speech(words: Sequence[TimedWord]) -> list[Token]:
    pieces: list[_Piece] = []
    initial = True
    for text, start, end, conf in join_whisper_pieces(words):
        chunks = [c for c in _SPLITTERS.split(text) if c]
        # A hyphenated word shares its time span out between its parts.
        step = (end - start) / max(1, len(chunks))
        for k, chunk in enumerate(chunks):
            pieces.extend(_chunk_pieces(chunk, initial, start + k * step, start + (k + 1) * step, conf))
        initial = text.rstrip("\"'”)").endswith((".", "!", "?"))
    return [
        Token(p.key, p.raw, p.start_s, p.end_s, p.confidence, -1, i, p.number, p.capitalised, p.sentence_initial)
        for i, p in enumerate(_merge_numbers(pieces))
    ]


def is_wordlike(key: str) -> bool:
    return bool(_WORD.match(key))
