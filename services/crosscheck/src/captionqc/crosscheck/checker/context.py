"""Homophones and a small context model to arbitrate them.

The sound cannot tell "their" from "there": when a caption word and the spoken word are homophones, the ASR's
spelling is only its language model's guess. A few next/previous-word cues for the commonest sets say which
spelling the sentence wants; where they are silent the ASR's choice (and its confidence) decides alone.
"""

from __future__ import annotations

_GROUPS: tuple[frozenset[str], ...] = tuple(
    frozenset(g.split())
    for g in (
        "their there they're", "to too two", "your you're", "its it's", "whose who's", "were we're",
        "hear here", "weather whether", "then than", "affect effect", "accept except", "break brake",
        "principal principle", "right write rite", "know no", "knew new", "by buy bye", "for four fore",
        "one won", "sea see", "week weak", "piece peace", "plane plain", "road rode", "sale sail",
        "site sight cite", "steal steel", "whole hole", "wait weight", "meet meat", "board bored",
        "allowed aloud", "past passed", "led lead", "council counsel", "complement compliment",
        "stationary stationery", "capital capitol", "aid aide", "bare bear", "hour our", "made maid",
        "mail male", "pair pear pare", "rain reign rein", "role roll", "tail tale", "threw through",
        "wear where", "which witch", "would wood", "die dye", "flour flower", "higher hire", "waste waist",
        "course coarse", "seen scene", "sum some", "sun son", "thrown throne", "vain vein", "way weigh",
        "heard herd", "idle idol", "missed mist", "morning mourning", "patience patients", "presence presents",
        "residence residents", "suite sweet", "ate eight", "won one", "cell sell", "cent scent sent",
        "bored board", "brake break", "feat feet", "fair fare", "great grate", "hall haul", "heal heel",
    )
)  # fmt: skip
_GROUP_OF: dict[str, frozenset[str]] = {}
for _g in _GROUPS:
    for _w in _g:
        _GROUP_OF[_w] = _GROUP_OF.get(_w, frozenset()) | _g


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_AUX = _words(
    "is are was were will would has have had may might must should could can seems seem appears remain "
    "remains used isn't aren't wasn't weren't"
)
_DETERMINERS = _words("the a an this that these those my our his her its their your some any")
_DEGREE = _words(
    "much many late long far soon often few little big small high low early bad good expensive hot cold "
    "fast slow close busy hard easy young old large great"
)
_PLURAL_UNITS = _words("people years days weeks months hours minutes times percent million billion")
_COMPARATIVE_WORDS = _words("more less rather other fewer better worse higher lower larger smaller")
_AFTER_THERE = _words(
    "to in on at for from and but or now again too as with by since until after before so then yet when if "
    "because while where who which that over near"
)
_STATE_NEXT = _words("not going a an the all also still now here there very so too being both")


def are_homophones(a: str, b: str) -> bool:
    return b in _GROUP_OF.get(a, frozenset())


def _fits(word: str, prev: str | None, nxt: str | None) -> int:
    """+1 when the neighbours want this spelling, -1 when they rule it out, 0 when they cannot tell."""
    ing = nxt is not None and nxt.endswith("ing") and len(nxt) > 4
    if word == "there":
        if nxt is None or nxt in _AUX or nxt == "'s":
            return 1
        # "there" runs into a preposition or an adverb ("there to", "there now"); before a noun it is wrong.
        return 0 if nxt in _AFTER_THERE else -1
    if word in ("their", "your", "its", "whose") and nxt is None:
        return -1
    if word in ("their", "your", "its", "whose"):
        # "its growing economy" is fine, "their going" is not: the gerund cue is left out for "its".
        gerund = ing and word != "its"
        return -1 if (nxt in _AUX or nxt in _DETERMINERS or nxt in ("not", "going") or gerund) else 0
    if word in ("they're", "you're", "it's", "we're", "who's"):
        if ing or nxt in _STATE_NEXT:
            return 1
        return -1 if nxt in _AUX else 0
    if word == "to":
        if nxt is None or nxt in _DEGREE:
            return -1
        return 1 if nxt in _DETERMINERS else 0
    if word == "too":
        if nxt is None or nxt in _DEGREE:
            return 1
        return -1 if nxt in _DETERMINERS else 0
    if word == "two":
        if nxt in _PLURAL_UNITS or (nxt is not None and nxt.endswith("s") and len(nxt) > 3):
            return 1
        return -1 if nxt in _DETERMINERS or nxt is None else 0
    if word == "than":
        return 1 if prev is not None and (prev in _COMPARATIVE_WORDS or prev.endswith("er")) else -1
    if word == "then":
        return -1 if prev is not None and prev in _COMPARATIVE_WORDS else 0
    if word == "were":
        return -1 if ing or nxt == "going" else 0
    return 0


def context_preference(caption_word: str, spoken_word: str, prev: str | None, nxt: str | None) -> int:
    """> 0: the sentence wants the spoken spelling; < 0: it wants the caption's; 0: no opinion."""
    return _fits(spoken_word, prev, nxt) - _fits(caption_word, prev, nxt)
