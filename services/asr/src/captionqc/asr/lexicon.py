"""British pronunciations for pocketsphinx, whose dictionary (CMUdict) knows American English only.

pocketsphinx scores speech against the phone sequences its dictionary lists for each word. CMUdict has one or two
American pronunciations per word, so a British speaker's "water" (W AO T AH, no R), "news" (N Y UW Z) or
"tuesday" (T Y UW Z D EY) match no entry well, and the decoder picks other words that happen to fit. Adding the
British forms as alternates lets the decoder choose per word, the way CMUdict already lists "either" twice.

The British forms come from misaki's en-GB lexicons (``gb_gold`` and ``gb_silver``, Apache-2.0; IPA, with its own
one-letter diphthongs), mapped to the 39 ARPAbet phones of pocketsphinx's en-US acoustic model. Only words already
in CMUdict get alternates: the language model knows no other words, so new ones could never be chosen.

The merged dictionary is built once per process (about a second) into a temporary file that lives as long as
the ``Lexicon`` object (the folder is removed when it is collected or the process exits).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import version as dist_version
from importlib.resources import files
from pathlib import Path

# misaki's IPA → ARPAbet. A long vowel "ɑː" is one phone; misaki writes diphthongs as one capital letter
# (A = eɪ, I = aɪ, W = aʊ, Y = ɔɪ, O = American oʊ, Q = British əʊ). British-only vowels map to the nearest
# American phone: ɒ ("hot") → AA, a ("cat") → AE, ɛː ("square") → EH.
_IPA_TO_ARPABET: Mapping[str, str] = {
    "ɑː": "AA", "ɑ": "AA", "ɒ": "AA", "ɒː": "AA", "aː": "AA",
    "ɔː": "AO", "ɔ": "AO",
    "a": "AE", "æ": "AE",
    "ə": "AH", "ᵊ": "AH", "ʌ": "AH",
    "ɜː": "ER", "ɜ": "ER", "əː": "ER",
    "ɪ": "IH", "ᵻ": "IH", "i": "IY", "iː": "IY",
    "ʊ": "UH", "u": "UW", "uː": "UW",
    "ɛ": "EH", "ɛː": "EH",
    "A": "EY", "I": "AY", "W": "AW", "Y": "OY", "O": "OW", "Q": "OW",
    "b": "B", "d": "D", "f": "F", "h": "HH", "j": "Y", "k": "K", "l": "L", "m": "M", "n": "N", "p": "P",
    "s": "S", "t": "T", "v": "V", "w": "W", "z": "Z", "ɡ": "G", "ŋ": "NG", "ɹ": "R",
    "ʃ": "SH", "ʒ": "ZH", "ð": "DH", "θ": "TH", "ʧ": "CH", "ʤ": "JH", "ɾ": "T", "ʔ": "T",
}  # fmt: skip
_IGNORED = str.maketrans("", "", "ˈˌ-")
_ALTERNATE = re.compile(r"\(\d+\)$")
_SOURCES = ("gb_gold.json", "gb_silver.json")


def to_arpabet(ipa: str) -> tuple[str, ...] | None:
    """ARPAbet phones of one misaki IPA pronunciation, or None if it has a symbol with no counterpart."""
    text = ipa.translate(_IGNORED)
    phones: list[str] = []
    i = 0
    while i < len(text):
        long_vowel = text[i : i + 2]
        if long_vowel.endswith("ː") and long_vowel in _IPA_TO_ARPABET:
            phones.append(_IPA_TO_ARPABET[long_vowel])
            i += 2
            continue
        phone = _IPA_TO_ARPABET.get(text[i])
        if phone is None:
            return None
        phones.append(phone)
        i += 1
    return tuple(phones) or None


def read_cmudict(lines: Iterable[str]) -> dict[str, list[tuple[str, ...]]]:
    """Word → pronunciations, in file order ("read(2)" is the second pronunciation of "read")."""
    entries: dict[str, list[tuple[str, ...]]] = {}
    for line in lines:
        word, *phones = line.split()
        if phones:
            entries.setdefault(_ALTERNATE.sub("", word), []).append(tuple(phones))
    return entries


def british_pronunciations(lexicon: Mapping[str, str | Mapping[str, str | None]]) -> Iterator[tuple[str, str]]:
    """(lower-case word, IPA) pairs of a misaki lexicon; a word with part-of-speech forms yields each."""
    for word, value in lexicon.items():
        forms = value.values() if isinstance(value, Mapping) else (value,)
        for ipa in forms:
            if ipa:
                yield word.lower(), ipa


def add_alternates(entries: dict[str, list[tuple[str, ...]]], pronunciations: Iterable[tuple[str, str]]) -> int:
    """Add each pronunciation of a word ``entries`` already has, unless it is listed; returns how many were added."""
    added = 0
    for word, ipa in pronunciations:
        known = entries.get(word)
        phones = to_arpabet(ipa)
        if known is not None and phones is not None and phones not in known:
            known.append(phones)
            added += 1
    return added


def write_cmudict(entries: Mapping[str, list[tuple[str, ...]]]) -> Iterator[str]:
    for word, prons in entries.items():
        for n, phones in enumerate(prons, start=1):
            yield f"{word if n == 1 else f'{word}({n})'} {' '.join(phones)}\n"


@dataclass(frozen=True)
class LexiconInfo:
    label: str  # goes into the engine version, so results change ce-id when the lexicon does
    alternates: int


class Lexicon:
    """CMUdict plus misaki's British pronunciations, as a dictionary file pocketsphinx can load."""

    def __init__(self, cmudict: Path) -> None:
        entries = read_cmudict(cmudict.read_text(encoding="utf-8").splitlines())
        data = files("misaki.data")
        added = 0
        for name in _SOURCES:
            lexicon = json.loads(data.joinpath(name).read_text(encoding="utf-8"))
            added += add_alternates(entries, british_pronunciations(lexicon))
        self.info = LexiconInfo(label=f"misaki{dist_version('misaki')}-gb", alternates=added)
        folder = tempfile.mkdtemp(prefix="captionqc-lexicon-")
        # Removed with this object or at exit (TemporaryDirectory would warn about being cleaned up implicitly).
        weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        self.path = Path(folder) / "cmudict-en-us+gb.dict"
        with self.path.open("w", encoding="utf-8") as out:
            out.writelines(write_cmudict(entries))
