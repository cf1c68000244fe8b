"""The checker on hand-made captions and speech: one case per kind of finding, and the traps around them."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from captionqc.crosscheck.checker import CheckerConfig, CheckResult, check_captions, warm_up
from captionqc.schemas.events import CaptionSegment, CheckKind, JobOptions, Severity, TimedWord, TypoFinding

CONFIG = CheckerConfig()


def spoken(text: str, start: float, end: float, conf: float = 0.95) -> list[TimedWord]:
    """Words spread evenly over [start, end], each with Whisper's leading space."""
    pieces = text.split()
    step = (end - start) / len(pieces)
    return [
        TimedWord(start_s=start + i * step, end_s=start + (i + 1) * step, word=" " + w, confidence=conf)
        for i, w in enumerate(pieces)
    ]


def caption(text: str, start: float, end: float, conf: float = 0.97) -> CaptionSegment:
    return CaptionSegment(start_s=start, end_s=end, text=text, confidence=conf)


def run(
    captions: Sequence[CaptionSegment], words: Sequence[TimedWord], options: JobOptions | None = None
) -> CheckResult:
    return check_captions(captions, words, options or JobOptions(), CONFIG)


def only(result: CheckResult) -> TypoFinding:
    assert len(result.findings) == 1, [(f.kind, f.word, f.confidence) for f in result.findings]
    return result.findings[0]


def test_clean_caption_gives_no_finding() -> None:
    text = "The city council met on Tuesday to approve the new budget."
    result = run([caption(text, 0.0, 4.0)], spoken(text, 0.1, 3.9))
    assert result.findings == []
    assert result.summary.confirmed_share == 1.0
    assert result.summary.caption_words == result.summary.spoken_words == 11


def test_misspelling_suggests_the_spoken_word() -> None:
    result = run(
        [caption("The city conucil met on Tuesday.", 0.0, 3.0)], spoken("The city council met on Tuesday.", 0, 3)
    )
    f = only(result)
    assert (f.kind, f.word, f.suggestion, f.severity) == (CheckKind.MISSPELLING, "conucil", "council", Severity.ERROR)
    assert f.evidence["edit_distance"] == 1
    assert f.evidence["caption_is_word"] is False
    assert f.start_s == 0.0
    assert f.end_s == 3.0


@pytest.mark.parametrize(
    ("shown", "said", "word", "suggestion"),
    [
        # Whisper capitalises "City Council"; the caption does not.
        ("The city conucil met.", "The City Council met.", "conucil", "council"),
        ("Opposiition members left.", "opposition members left.", "Opposiition", "Opposition"),
        ("OPPOSIITION MEMBERS LEFT.", "Opposition members left.", "OPPOSIITION", "OPPOSITION"),
        ("Their going home.", "they're going home.", "Their", "They're"),
        # Inner capitals are the speller's own.
        ("Lunch at mcdonlds today.", "Lunch at McDonalds today.", "mcdonlds", "McDonalds"),
    ],
)
def test_suggestion_takes_the_captions_case(shown: str, said: str, word: str, suggestion: str) -> None:
    f = only(run([caption(shown, 0.0, 3.0)], spoken(said, 0, 3)))
    assert (f.word, f.suggestion) == (word, suggestion)


def test_wrong_word_close_in_spelling() -> None:
    f = only(run([caption("A letter form the mayor.", 0, 2)], spoken("A letter from the mayor.", 0, 2)))
    assert (f.kind, f.word, f.suggestion) == (CheckKind.WRONG_WORD, "form", "from")


def test_number_mismatch_against_whisper_split_number() -> None:
    words = [
        *spoken("They will spend", 0.0, 1.2),
        TimedWord(start_s=1.2, end_s=1.5, word=" 80", confidence=0.9),
        TimedWord(start_s=1.5, end_s=1.7, word=",000", confidence=0.9),
        *spoken("pounds.", 1.7, 2.0),
    ]
    f = only(run([caption("They will spend 86,000 pounds.", 0, 2)], words))
    assert (f.kind, f.word, f.suggestion) == (CheckKind.NUMBER_MISMATCH, "86,000", "80,000")


@pytest.mark.parametrize(
    ("shown", "said"),
    [
        ("They will spend 80,000 pounds.", "They will spend eighty thousand pounds."),
        ("They will spend eighty thousand pounds.", "They will spend 80,000 pounds."),
        ("Prices rose 5% in the 21st week.", "Prices rose five percent in the twenty-first week."),
        ("It cost $3.5 million.", "It cost 3.5 million dollars."),
        ("We don't know.", "We do not know."),
        ("We cannot say.", "We can not say."),
    ],
)
def test_equivalent_spellings_are_not_findings(shown: str, said: str) -> None:
    assert run([caption(shown, 0, 3)], spoken(said, 0, 3)).findings == []


def test_missing_ocr_spaces_are_recovered() -> None:
    said = "The council met on Tuesday to discuss the budget."
    result = run([caption("Thecouncilmet ontuesday todiscuss thebudget.", 0, 3)], spoken(said, 0, 3))
    assert result.findings == []
    assert result.summary.confirmed_share == 1.0


def test_typo_inside_glued_text_is_found() -> None:
    said = "The council met on Tuesday."
    f = only(run([caption("Thecouncl meton Tuesday.", 0, 3)], spoken(said, 0, 3)))
    assert (f.word, f.suggestion, f.kind) == ("councl", "council", CheckKind.MISSPELLING)


def test_global_offset_is_estimated() -> None:
    # Captions run 1.5 s ahead of the speech: without the offset the words would fall into the next caption.
    lines = [
        "The council met on Tuesday.",
        "Members voted for the new library.",
        "Work starts in the spring.",
        "The mayor welcomed the decision.",
    ]
    captions, words = [], []
    for i, line in enumerate(lines):
        captions.append(caption(line, i * 2.0, i * 2.0 + 2.0))
        words.extend(spoken(line, i * 2.0 + 1.5, i * 2.0 + 3.4))
    result = run(captions, words)
    assert result.summary.offset_s == pytest.approx(1.5, abs=0.3)
    assert result.findings == []


def test_homophone_wrong_word_uses_context() -> None:
    said = "There are two meetings this week."
    f = only(run([caption("Their are two meetings this week.", 0, 3)], spoken(said, 0, 3)))
    assert (f.kind, f.word, f.suggestion) == (CheckKind.WRONG_WORD, "Their", "There")
    assert f.evidence["homophone"] is True
    assert f.evidence["context_preference"] == 2


def test_homophone_asr_choice_against_context_is_not_reported() -> None:
    # The ASR wrote "there" but "their families" wants the caption's spelling: the sound cannot decide.
    said = "They thanked there families."
    result = run([caption("They thanked their families.", 0, 2)], spoken(said, 0, 2))
    assert result.findings == []
    said = "There is a park."
    result = run([caption("Their is a park.", 0, 2)], spoken(said, 0, 2))
    assert only(result).severity is Severity.ERROR


def test_number_word_homophone() -> None:
    f = only(run([caption("A meeting in too weeks.", 0, 2)], spoken("A meeting in two weeks.", 0, 2)))
    assert (f.kind, f.word, f.suggestion) == (CheckKind.WRONG_WORD, "too", "two")


def test_asr_mishearing_of_a_common_word_is_not_reported() -> None:
    # Whisper heard "cattle" where "council" was said and shown: a real, common caption word that neither looks
    # nor sounds like the ASR's word is presumed right.
    result = run([caption("The council agreed.", 0, 2)], spoken("The cattle agreed.", 0, 2))
    assert result.findings == []


def test_caption_not_spoken() -> None:
    result = run(
        [caption("The council met on Tuesday to approve the new city library budget.", 0, 4)],
        spoken("The council met on Tuesday.", 0, 1.8),
    )
    f = only(result)
    assert f.kind is CheckKind.CAPTION_NOT_SPOKEN
    assert f.word == "to approve the new city library budget"
    assert result.summary.confirmed_share == pytest.approx(5 / 12, abs=1e-3)


def test_speech_not_captioned() -> None:
    words = spoken("The council met on Tuesday.", 0, 2) + spoken("Residents asked for more parking spaces.", 2.2, 5)
    f = only(run([caption("The council met on Tuesday.", 0, 2)], words))
    assert f.kind is CheckKind.SPEECH_NOT_CAPTIONED
    assert f.word == "Residents asked for more parking spaces"
    assert f.start_s == pytest.approx(2.2)
    assert f.caption_text == ""


def test_single_dropped_small_word_is_not_an_omission() -> None:
    result = run([caption("The council met on Tuesday.", 0, 2)], spoken("The council met Tuesday.", 0, 2))
    assert result.findings == []


def test_glossary_terms_are_never_flagged() -> None:
    # Okonkwo goes unheard (the ASR missed the name), so only the dictionary judges it: unknown → flagged.
    captions = [caption("Okonkwo thanked the council.", 0, 3)]
    words = spoken("thanked the council.", 1, 3)
    assert [f.word for f in run(captions, words).findings] == ["Okonkwo"]
    assert run(captions, words, JobOptions(glossary=["OKONKWO"])).findings == []


def test_names_the_asr_spells_differently_are_not_misspellings() -> None:
    captions = [caption("We spoke to Councillor Okonkwo today.", 0, 3)]
    assert run(captions, spoken("We spoke to Councillor Okonquo today.", 0, 3)).findings == []


def test_ng_words_are_always_flagged() -> None:
    text = "The damn budget passed."
    result = run([caption(text, 0, 2)], spoken(text, 0, 2), JobOptions(ng_words=["Damn"]))
    f = only(result)
    assert (f.kind, f.word, f.confidence, f.severity) == (CheckKind.WRONG_WORD, "damn", 1.0, Severity.ERROR)
    assert f.evidence == {"ng_word": True}


def test_switched_off_kinds_are_not_reported() -> None:
    captions = [caption("The city conucil spent 86 pounds.", 0, 3)]
    words = spoken("The city council spent 80 pounds.", 0, 3)
    everything = run(captions, words)
    assert {f.kind for f in everything.findings} == {CheckKind.MISSPELLING, CheckKind.NUMBER_MISMATCH}
    numbers_only = run(captions, words, JobOptions(checks=[CheckKind.NUMBER_MISMATCH]))
    assert [f.kind for f in numbers_only.findings] == [CheckKind.NUMBER_MISMATCH]
    assert numbers_only.summary.counts == {CheckKind.NUMBER_MISMATCH: 1}


def test_misspelling_without_speech_falls_back_to_the_dictionary() -> None:
    f = only(run([caption("The govrenment announced it.", 0, 2)], []))
    assert (f.kind, f.suggestion) == (CheckKind.MISSPELLING, "government")
    assert f.evidence["spoken"] is None
    # wordfreq has seen "goverment" (Zipf 2.66) often enough that the dictionary alone does not accuse it...
    assert run([caption("The goverment announced it.", 0, 2)], []).findings == []
    # ...but the speech does.
    f = only(run([caption("The goverment announced it.", 0, 2)], spoken("The government announced it.", 0, 2)))
    assert (f.kind, f.suggestion) == (CheckKind.MISSPELLING, "government")


def test_british_and_american_spellings_match() -> None:
    shown = "The organisers of the theatre festival realised the colour was wrong."
    said = "The organizers of the theater festival realized the color was wrong."
    assert run([caption(shown, 0, 4)], spoken(said, 0, 4)).findings == []
    # Spellings no suffix rule covers come from Whisper's list of British/American pairs.
    shown = "The councillors met the jewellery makers in the storeys above the kerb."
    said = "The councilors met the jewelry makers in the stories above the curb."
    assert run([caption(shown, 0, 4)], spoken(said, 0, 4)).findings == []


def test_asr_dropping_an_ending_is_not_reported_but_a_caption_dropping_one_is() -> None:
    assert run([caption("It looks bad.", 0, 2)], spoken("It look bad.", 0, 2)).findings == []
    f = only(run([caption("Markets close lower.", 0, 2)], spoken("Markets closed lower.", 0, 2)))
    assert (f.kind, f.word, f.suggestion) == (CheckKind.WRONG_WORD, "close", "closed")


def test_finding_ids_are_deterministic_and_unique() -> None:
    captions = [caption("The conucil and the conucil met.", 0, 3)]
    words = spoken("The council and the council met.", 0, 3)
    first, second = run(captions, words), run(captions, words)
    assert [f.id for f in first.findings] == [f.id for f in second.findings]
    assert len({f.id for f in first.findings}) == 2


def test_evidence_and_confidence_fit_the_contract() -> None:
    result = run([caption("Their conucil spent 86 pounds.", 0, 3)], spoken("The council spent 80 pounds.", 0, 3))
    assert result.findings
    for f in result.findings:
        assert 0.0 <= f.confidence <= 1.0
        assert all(v is None or isinstance(v, str | int | float | bool) for v in f.evidence.values())


def test_a_minute_of_captions_flags_each_injected_typo_once() -> None:
    # Speed is measured by bench/detection_eval.py (ms per clip), not asserted here: a shared machine is noisy.
    warm_up()
    places = ["library", "museum", "station", "bridge", "school", "stadium", "harbour", "market", "clinic", "park"]
    captions, words = [], []
    for i in range(20):
        t = i * 3.0
        line = f"On day {i + 1} the council approved the new budget for the {places[i % 10]}."
        captions.append(caption(line.replace("budget", "budgget") if i % 3 == 0 else line, t, t + 3.0))
        words.extend(spoken(line, t + 0.1, t + 2.9))
    result = run(captions, words)
    assert len(result.findings) == 7


def test_config_rejects_inconsistent_thresholds() -> None:
    with pytest.raises(ValueError, match="min_confidence"):
        CheckerConfig(min_confidence=0.9, error_threshold=0.8)


def test_a_misspelt_word_stays_whole_when_the_speech_was_misheard() -> None:
    # Whisper heard "neglected" as "elected" on news_council.mp4: the tail "glected" is a near miss of a spoken word,
    # but the whole word is one letter from "neglected", so the finding names what is on screen.
    result = run(
        [caption("Residents say their streets have been negglected for years.", 0.0, 3.5)],
        spoken("Resident say their streets have been elected for years.", 0.1, 3.4),
    )
    f = only(result)
    assert (f.kind, f.word, f.suggestion) == (CheckKind.MISSPELLING, "negglected", "neglected")


def test_two_glued_words_still_split_when_one_is_an_edit_from_a_third() -> None:
    # "forthe" is one letter from "forth": the spoken "for" + "the" split is still the cheaper reading.
    text = "Tickets are on sale forthe final match."
    result = run([caption(text, 0.0, 3.0)], spoken("Tickets are on sale for the final match.", 0.1, 2.9))
    assert result.findings == []
