"""The OCR stage on the committed sample clips, scored against their ground truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from captionqc.media.errors import MediaNotFound, MediaTooLong, MediaUnreadable, NoVideoStream, UnsupportedCodec
from captionqc.media.testing import with_undecodable_stream
from captionqc.ocr.engine import OcrEngine
from captionqc.ocr.settings import OcrSettings
from captionqc.ocr.stage import OcrOutcome, read_captions
from captionqc.schemas import FailureReason, RegionHint

from .scoring import SAMPLES, sample_clips, score_clip, truth_of, write_audio_only

pytestmark = pytest.mark.slow
CLIPS = sample_clips()


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.stem)
def test_character_error_rate_is_at_most_three_percent(clip: Path, sample_outcomes: dict[Path, OcrOutcome]) -> None:
    cer, scores = score_clip(sample_outcomes[clip].segments, truth_of(clip))
    worst = sorted(scores, key=lambda s: -s.errors)[:3]
    assert cer <= 0.03, f"CER {cer:.3f}; worst captions: {worst}"


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.stem)
def test_every_caption_is_read_once_with_its_typos_as_displayed(
    clip: Path, sample_outcomes: dict[Path, OcrOutcome]
) -> None:
    outcome = sample_outcomes[clip]
    truth = truth_of(clip)
    # No missed caption and no caption split in two (a stale or flickering read would do either).
    assert len(outcome.segments) == len(truth["captions"])
    for seg, cap in zip(outcome.segments, truth["captions"], strict=True):
        assert seg.start_s == pytest.approx(cap["start_s"], abs=0.6)
        assert seg.end_s == pytest.approx(cap["end_s"], abs=0.6)
        assert 0.5 <= seg.confidence <= 1.0
        assert seg.bbox is not None
        # Burned in the bottom third of a 1280×720 frame.
        assert seg.bbox.y >= 480
        assert seg.bbox.y + seg.bbox.height <= 720
        # OCR never "corrects" a typo: the misspelt word is read as shown (spaces aside).
        squeezed = "".join(seg.text.split()).lower()
        for typo in cap["typos"]:
            assert "".join(typo["displayed"].split()).lower() in squeezed, (typo, seg.text)


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.stem)
def test_change_detection_cuts_ocr_calls(clip: Path, sample_outcomes: dict[Path, OcrOutcome]) -> None:
    stats = sample_outcomes[clip].stats
    truth = truth_of(clip)
    assert stats.frames_sampled == pytest.approx(truth["duration_s"] * 2, abs=2)
    # At least one read per caption is needed; well under half of the sampled frames is what the mask achieves
    # (the rest are forced safety-net reads).
    assert len(truth["captions"]) <= stats.frames_ocred <= 0.5 * stats.frames_sampled
    assert stats.media_duration_s == pytest.approx(truth["duration_s"], abs=0.1)


def test_read_captions_is_deterministic(
    ocr_settings: OcrSettings, ocr_engine: OcrEngine, sample_outcomes: dict[Path, OcrOutcome]
) -> None:
    clip = min(CLIPS, key=lambda p: truth_of(p)["duration_s"])
    again = read_captions(clip, settings=ocr_settings, engine=ocr_engine)
    first = sample_outcomes[clip]
    assert again.segments == first.segments
    assert again.engine == first.engine
    assert again.stats.frames_ocred == first.stats.frames_ocred


def test_progress_is_reported_up_to_done(ocr_engine: OcrEngine) -> None:
    clip = min(CLIPS, key=lambda p: truth_of(p)["duration_s"])
    calls: list[tuple[float, str]] = []
    # A tiny interval so a short clip reports several times; a strip with no captions keeps OCR cheap.
    settings = OcrSettings(progress_interval_s=0.01)
    top = RegionHint(x=0.0, y=0.0, width=1.0, height=0.1)
    read_captions(clip, region=top, settings=settings, engine=ocr_engine, on_progress=lambda f, m: calls.append((f, m)))
    fractions = [f for f, _ in calls]
    assert len(calls) >= 2
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert "captions read" in calls[-1][1]


def _error_path(name: str, tmp_path: Path) -> Path:
    committed = SAMPLES / name
    if committed.is_file():
        return committed
    path = tmp_path / name
    if name == "corrupt.mp4":
        # What the committed one is: the first 20 KB of an MP4 whose index is at the end.
        path.write_bytes(CLIPS[0].read_bytes()[:20_000])
    else:
        write_audio_only(path)
    return path


def test_permanent_media_errors_have_reasons(tmp_path: Path, ocr_engine: OcrEngine) -> None:
    settings = OcrSettings()
    with pytest.raises(MediaNotFound) as not_found:
        read_captions(tmp_path / "gone.mp4", settings=settings, engine=ocr_engine)
    with pytest.raises(MediaUnreadable) as corrupt:
        read_captions(_error_path("corrupt.mp4", tmp_path), settings=settings, engine=ocr_engine)
    with pytest.raises(MediaTooLong) as too_long:
        read_captions(CLIPS[0], settings=OcrSettings(max_media_duration_s=10), engine=ocr_engine)
    assert not_found.value.reason is FailureReason.MEDIA_NOT_FOUND
    assert corrupt.value.reason is FailureReason.MEDIA_UNREADABLE
    assert too_long.value.reason is FailureReason.MEDIA_TOO_LONG
    assert "longer than the configured maximum of 10 s" in too_long.value.message


def test_an_audio_stream_no_decoder_knows_does_not_stop_the_captions(
    tmp_path: Path, ocr_engine: OcrEngine, sample_outcomes: dict[Path, OcrOutcome]
) -> None:
    # OCR needs only the picture: a broadcast file whose sound track is in a codec missing from this FFmpeg build
    # is still read in full.
    clip = CLIPS[0]
    path = with_undecodable_stream(clip, "audio", tmp_path / clip.name)
    outcome = read_captions(path, settings=OcrSettings(), engine=ocr_engine)
    assert outcome.segments == sample_outcomes[clip].segments


def test_a_video_stream_no_decoder_knows_is_an_unsupported_codec(tmp_path: Path, ocr_engine: OcrEngine) -> None:
    path = with_undecodable_stream(CLIPS[0], "video", tmp_path / CLIPS[0].name)
    with pytest.raises(UnsupportedCodec) as err:
        read_captions(path, settings=OcrSettings(), engine=ocr_engine)
    assert err.value.reason is FailureReason.UNSUPPORTED_CODEC
    assert err.value.message == "the video stream uses a codec this service cannot decode"


def test_audio_only_media_has_no_video_stream(tmp_path: Path, ocr_engine: OcrEngine) -> None:
    with pytest.raises(NoVideoStream) as err:
        read_captions(_error_path("audio_only.m4a", tmp_path), settings=OcrSettings(), engine=ocr_engine)
    assert err.value.reason is FailureReason.NO_VIDEO_STREAM
    assert err.value.message == "the media has no video stream, so there are no captions to read"
