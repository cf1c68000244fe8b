"""Fast checks of the pure parts: number joining, silence cuts, WER normalising, settings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from captionqc.asr.engines import EngineSpec
from captionqc.asr.lexicon import add_alternates, british_pronunciations, read_cmudict, to_arpabet, write_cmudict
from captionqc.asr.numbers import RawWord, join_split_words
from captionqc.asr.settings import AsrSettings, EngineKind, default_whisper_model
from captionqc.asr.vad import split_at_silences
from captionqc.asr.wer import int_to_words, normalise_words, word_error_rate
from captionqc.media.audio import SAMPLE_RATE
from captionqc.media.settings import ExecutionMode


def _raw(*texts: str) -> list[RawWord]:
    return [RawWord(text, i * 1.0, i * 1.0 + 0.5, 0.9 - i * 0.1) for i, text in enumerate(texts)]


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ((" a", " budget", " of", " 80", ",000", " dollars"), ["a", "budget", "of", "80,000", "dollars"]),
        ((" $", "12", ",500"), ["$12,500"]),
        ((" rose", " 4", "%"), ["rose", "4%"]),
        ((" 3", ".5", " metres"), ["3.5", "metres"]),
        ((" don", "'t", " go"), ["don't", "go"]),
        ((" the", " 1990", "s"), ["the", "1990s"]),
        ((" Hello,", " world."), ["Hello,", "world."]),
    ],
)
def test_join_split_words(pieces: tuple[str, ...], expected: list[str]) -> None:
    joined = join_split_words(_raw(*pieces))
    assert [w.text.strip() for w in joined] == expected


def test_joined_word_spans_its_pieces() -> None:
    joined = join_split_words(_raw(" 80", ",000"))
    assert joined == [RawWord(" 80,000", 0.0, 1.5, pytest.approx(0.8))]


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def _quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def test_pieces_are_cut_in_the_pauses_and_cover_everything() -> None:
    # "Speech" of 7 s with 0.6 s pauses at 7.0, 14.6, 22.2 … seconds.
    parts = []
    for _ in range(6):
        parts += [_tone(7.0), _quiet(0.6)]
    audio = np.concatenate(parts)
    blocks = np.array_split(audio, 37)  # uneven blocks, as a decoder delivers them
    pieces = list(split_at_silences(blocks, target_s=15.0, slack_s=4.0))

    assert np.array_equal(np.concatenate([p.audio for p in pieces]), audio)
    assert [p.index for p in pieces] == list(range(len(pieces)))
    for piece, following in itertools.pairwise(pieces):
        assert following.start_s == pytest.approx(piece.start_s + piece.duration_s)
        assert 11.0 <= piece.duration_s <= 19.0
        # The cut falls inside a pause (every pause starts 7 s into a 7.6 s period).
        assert 7.0 <= following.start_s % 7.6 <= 7.6
    assert not any(p.silent for p in pieces)


def test_silent_pieces_are_flagged_and_one_piece_without_target() -> None:
    audio = np.concatenate([_tone(3.0), _quiet(20.0), _tone(3.0)])
    pieces = list(split_at_silences([audio], target_s=8.0, slack_s=2.0))
    assert [p.silent for p in pieces] == [False, True, True, False]
    whole = list(split_at_silences([audio], target_s=float("inf"), slack_s=5.0))
    assert len(whole) == 1
    assert whole[0].duration_s == pytest.approx(26.0)


def test_number_words() -> None:
    assert int_to_words(80_000) == ["eighty", "thousand"]
    assert int_to_words(12_500) == ["twelve", "thousand", "five", "hundred"]
    assert int_to_words(2_024) == ["two", "thousand", "twenty", "four"]
    assert normalise_words("The $80,000 budget rose 4% in 2024.") == [
        "the", "eighty", "thousand", "dollars", "budget", "rose", "four", "percent", "in",
        "two", "thousand", "twenty", "four",
    ]  # fmt: skip
    assert word_error_rate("It cost 80,000 dollars.", "it cost eighty thousand dollars") == 0.0
    assert word_error_rate("nine o'clock news", "the nine oclock news") == pytest.approx(1 / 3)
    # Spoken British numbers carry an "and"; an engine writing them as words must not pay for it.
    assert word_error_rate("2,350 shares", "two thousand three hundred and fifty shares") == 0.0
    assert normalise_words("a hundred and the rest") == ["a", "hundred", "and", "the", "rest"]


def test_british_and_american_spellings_are_one_word() -> None:
    assert word_error_rate("The councillors and organisers", "the councilors and organizers") == 0.0
    assert word_error_rate("45 millimetres of rain", "forty five millimeters of rain") == 0.0
    # Only spellings fold: different words still differ.
    assert word_error_rate("four hours", "for ours") == 1.0


@pytest.mark.parametrize(
    ("ipa", "phones"),
    [
        ("wˈɔːtə", "W AO T AH"),  # non-rhotic: no R after the vowel
        ("njˈuːz", "N Y UW Z"),  # yod after n
        ("tjˈuːzdA", "T Y UW Z D EY"),  # misaki's one-letter diphthong A = eɪ
        ("hˈɒt", "HH AA T"),
        ("ðˈɛː", "DH EH"),
        ("ʧˈQz", "CH OW Z"),  # British əʊ
    ],
)
def test_misaki_ipa_to_arpabet(ipa: str, phones: str) -> None:
    assert to_arpabet(ipa) == tuple(phones.split())


def test_ipa_symbol_without_counterpart_gives_no_pronunciation() -> None:
    assert to_arpabet("ʁuʒ") is None
    assert to_arpabet("ˈ") is None


def test_british_alternates_join_known_words_only() -> None:
    entries = read_cmudict(["water W AO T ER", "there DH EH R", "there(2) DH EH", "news N UW Z"])
    lexicon = {
        "Water": "wˈɔːtə",
        "there": {"DEFAULT": "ðɛː", "None": "ðˈɛː"},  # part-of-speech forms, both already known
        "news": "nˈuːz",  # same as the American form: not listed twice
        "wallah": "wˈɒlə",  # not in the dictionary, so not in the language model either
        "bad": "ʁ",  # unmappable
    }
    assert add_alternates(entries, british_pronunciations(lexicon)) == 1
    assert "".join(write_cmudict(entries)).splitlines() == [
        "water W AO T ER",
        "water(2) W AO T AH",
        "there DH EH R",
        "there(2) DH EH",
        "news N UW Z",
    ]


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTIONQC_ASR_ENGINE", "pocketsphinx")
    monkeypatch.setenv("CAPTIONQC_ASR_POOL_SIZE", "2")
    monkeypatch.setenv("CAPTIONQC_ASR_EXECUTION_MODE", "cloud_run_job")
    monkeypatch.setenv("CAPTIONQC_ASR_CLOUD_RUN_JOB_NAME", "captionqc-asr-job")
    monkeypatch.setenv("CAPTIONQC_ASR_CLOUD_RUN_REGION", "europe-west1")
    monkeypatch.setenv("CAPTIONQC_ASR_POCKETSPHINX_BRITISH_PRONUNCIATIONS", "false")
    monkeypatch.setenv("CAPTIONQC_ASR_POCKETSPHINX_SPEAKER_ADAPTATION", "false")
    settings = AsrSettings()
    assert settings.engine is EngineKind.POCKETSPHINX
    assert EngineSpec.from_settings(settings).british_pronunciations is False
    assert EngineSpec.from_settings(settings).speaker_adaptation is False
    assert settings.pool_size == 2
    assert settings.execution_mode is ExecutionMode.CLOUD_RUN_JOB
    assert settings.whisper_model == default_whisper_model()
    assert settings.cpu_threads == 1
    assert settings.inline_result_limit_bytes == 1_000_000
