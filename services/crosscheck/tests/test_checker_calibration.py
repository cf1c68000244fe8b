"""Confidence calibration: weak evidence against a caption stays below the reporting threshold, strong evidence
does not. Each case pairs a false alarm seen with the real engines with the true error it must not hide."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from captionqc.crosscheck.checker import CheckerConfig, CheckResult, check_captions
from captionqc.schemas.events import CaptionSegment, CheckKind, JobOptions, Severity, TimedWord, TypoFinding

CONFIG = CheckerConfig()
EVERYTHING = CheckerConfig(min_confidence=0.0)


def spoken(
    text: str, start: float, end: float, conf: float = 0.95, low: dict[str, float] | None = None
) -> list[TimedWord]:
    """Words spread evenly over [start, end]; ``low`` gives some words their own ASR confidence."""
    pieces = text.split()
    step = (end - start) / len(pieces)
    low = low or {}
    return [
        TimedWord(
            start_s=start + i * step,
            end_s=start + (i + 1) * step,
            word=" " + w,
            confidence=low.get(w.strip(".,"), conf),
        )
        for i, w in enumerate(pieces)
    ]


def run(shown: str, words: Sequence[TimedWord], *, ocr: float = 0.98, config: CheckerConfig = CONFIG) -> CheckResult:
    seg = CaptionSegment(start_s=0.0, end_s=3.0, text=shown, confidence=ocr)
    return check_captions([seg], words, JobOptions(), config)


def findings(result: CheckResult) -> list[tuple[CheckKind, str]]:
    return [(f.kind, f.word) for f in result.findings]


def candidate(result: CheckResult, word: str) -> TypoFinding:
    return next(f for f in result.findings if f.word == word)


def test_asr_losing_a_word_onset_is_not_reported() -> None:
    # Whisper heard "round" for "ground" (word confidence 0.75): both real words, and the first letter differs,
    # which typists rarely get wrong.
    result = run(
        "Rain stopped play at the cricket ground.",
        spoken("Rain stopped play at the cricket round.", 0, 3, low={"round": 0.75}),
    )
    assert findings(result) == []
    weak = candidate(
        run(
            "Rain stopped play at the cricket ground.",
            spoken("Rain stopped play at the cricket round.", 0, 3, low={"round": 0.75}),
            config=EVERYTHING,
        ),
        "ground",
    )
    assert weak.evidence["onset_differs"] is True


def test_caption_dropping_a_final_letter_is_still_reported() -> None:
    result = run("The tea won the final.", spoken("The team won the final.", 0, 3, conf=0.97))
    f = candidate(result, "tea")
    assert (f.kind, f.suggestion) == (CheckKind.WRONG_WORD, "team")


@pytest.mark.parametrize(("asr", "reported"), [(0.4, False), (0.99, True)])
def test_real_word_disagreement_follows_asr_confidence(asr: float, reported: bool) -> None:
    words = spoken("The coach has only fourteen foot players.", 0, 3, low={"foot": asr})
    result = run("The coach has only fourteen fit players.", words)
    assert ((CheckKind.WRONG_WORD, "fit") in findings(result)) is reported


@pytest.mark.parametrize("asr", [0.02, 0.13, 0.5, 0.99])
def test_a_non_word_is_reported_however_unsure_the_asr_was_of_its_twin(asr: float) -> None:
    # Whisper gave a clip's first word "Drivers" confidence 0.13: the match cannot make "Drrivers" less of a
    # misspelling than the dictionary alone says it is.
    words = spoken("Drivers have been told to expect queues.", 0, 3, low={"Drivers": asr})
    f = candidate(run("Drrivers have been told to expect queues.", words), "Drrivers")
    assert (f.kind, f.suggestion) == (CheckKind.MISSPELLING, "Drivers")
    alone = candidate(run("Drrivers have been told to expect queues.", [], config=EVERYTHING), "Drrivers")
    assert f.confidence >= alone.confidence


def test_metaphone_lookalikes_count_less_than_listed_homophones() -> None:
    look = candidate(run("Fourteen fit players.", spoken("Fourteen foot players.", 0, 3), config=EVERYTHING), "fit")
    homo = candidate(run("A weak of rain.", spoken("A week of rain.", 0, 3), config=EVERYTHING), "weak")
    assert look.evidence["listed_homophone"] is False
    assert homo.evidence["listed_homophone"] is True
    assert look.confidence < homo.confidence


def test_ocr_confusable_letter_is_not_a_misspelling() -> None:
    # RapidOCR read "Universities" as "Unlversities": l for i is an OCR confusion, not a typing slip.
    result = run("Unlversities will raise fees.", spoken("Universities will raise fees.", 0, 3))
    assert findings(result) == []


def test_ocr_confusable_discount_grows_as_ocr_confidence_falls() -> None:
    words = spoken("Universities will raise fees.", 0, 3)
    sure = candidate(run("Unlversities will raise fees.", words, ocr=1.0, config=EVERYTHING), "Unlversities")
    unsure = candidate(run("Unlversities will raise fees.", words, ocr=0.9, config=EVERYTHING), "Unlversities")
    assert sure.evidence["ocr_confusable"] == "l/i"
    assert unsure.confidence < sure.confidence < 0.5


def test_typing_slips_next_to_confusable_letters_are_still_reported() -> None:
    # A dropped letter and a swap are typing errors, whatever letters are involved.
    result = run("Unversities wlil raise fees.", spoken("Universities will raise fees.", 0, 3))
    assert findings(result) == [(CheckKind.MISSPELLING, "Unversities"), (CheckKind.MISSPELLING, "wlil")]


def test_misspelled_scale_word_is_reported_instead_of_a_number_mismatch() -> None:
    result = run("Pupils have fallen to 4.5 millino.", spoken("Pupils have fallen to 4.5 million.", 0, 3))
    assert findings(result) == [(CheckKind.MISSPELLING, "millino")]
    assert result.findings[0].suggestion == "million"


def test_a_missing_scale_word_is_still_a_number_mismatch() -> None:
    result = run("Pupils have fallen to 4.5 now.", spoken("Pupils have fallen to 4.5 million now.", 0, 3))
    assert (CheckKind.NUMBER_MISMATCH, "4.5") in findings(result)


@pytest.mark.parametrize(
    ("shown", "said"),
    [
        ("Up to 30 centimetres of rain.", "Up to 30 centimeter of rain."),
        ("The organisers said so.", "The organizer said so."),
    ],
)
def test_british_spelling_with_an_ending_the_asr_dropped_is_not_reported(shown: str, said: str) -> None:
    assert findings(run(shown, spoken(said, 0, 3))) == []


@pytest.mark.parametrize(("asr", "reported"), [(0.3, False), (0.95, True)])
def test_number_mismatch_follows_asr_confidence(asr: float, reported: bool) -> None:
    result = run("A new contract until 2027.", spoken("A new contract until 2077.", 0, 3, low={"2077": asr}))
    assert ((CheckKind.NUMBER_MISMATCH, "2027") in findings(result)) is reported


def test_asr_hearing_two_numbers_for_one_weakens_the_mismatch() -> None:
    # Whisper's reading of "twenty twenty-seven" in one of the generated clips: "2000 and 2007".
    shown = "A new contract until the summer of 2027."
    split = run(
        shown,
        spoken("A new contract until the summer of 2000 and 2007.", 0, 3, low={"2000": 0.6, "2007": 0.6}),
        config=EVERYTHING,
    )
    whole = run(shown, spoken("A new contract until the summer of 2007.", 0, 3, low={"2007": 0.6}), config=EVERYTHING)
    weak, strong = candidate(split, "2027"), candidate(whole, "2027")
    assert weak.evidence["asr_split_number"] is True
    assert weak.confidence < CONFIG.min_confidence <= strong.confidence
    assert strong.severity is Severity.WARNING


def test_two_endings_on_one_stem_are_an_asr_slip() -> None:
    # "charges" heard as "charged": the ASR misheard the ending; the caption's word is a real inflection.
    words = spoken("The batteries are charged at night.", 0, 3, low={"charged": 0.6})
    assert findings(run("The batteries are charges at night.", words)) == []
    weak = candidate(run("The batteries are charges at night.", words, config=EVERYTHING), "charges")
    assert weak.evidence["inflection"] is True
