"""Probing and frame sampling on the committed sample clips and on broken media."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from captionqc.media.audio import decode_audio, has_audio
from captionqc.media.errors import MediaNotFound, MediaTooLong, MediaUnreadable, NoVideoStream, UnsupportedCodec
from captionqc.media.probe import probe
from captionqc.media.testing import with_undecodable_stream
from captionqc.media.video import BOTTOM_THIRD, region_pixels, sample_frames
from captionqc.schemas import FailureReason, RegionHint

from .media_files import audio_only, audio_with_cover_art, corrupt, sample_clips, truth_of

CLIPS = sample_clips()


def test_samples_are_present() -> None:
    assert CLIPS, "no sample clips with ground truth under samples/"


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.stem)
def test_probe_reads_streams_and_duration(clip: Path) -> None:
    truth = truth_of(clip)
    info = probe(clip)
    video = info.require_video()
    assert (video.width, video.height) == (truth["width"], truth["height"])
    assert video.codec == "h264"
    assert video.fps == pytest.approx(truth["fps"])
    if clip.stem != "silent_video":
        assert info.require_audio().codec == "aac"
    assert info.duration_s == pytest.approx(truth["duration_s"], abs=0.1)


def test_probe_refuses_media_longer_than_the_maximum() -> None:
    with pytest.raises(MediaTooLong) as err:
        probe(CLIPS[0], max_duration_s=5)
    assert err.value.reason is FailureReason.MEDIA_TOO_LONG
    assert "longer than the configured maximum of 5 s" in err.value.message


def test_corrupt_media_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(MediaUnreadable) as err:
        probe(corrupt(tmp_path))
    assert err.value.reason is FailureReason.MEDIA_UNREADABLE
    assert "not readable media" in err.value.message


def test_a_text_file_is_unreadable(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("these are not the frames you are looking for\n" * 50)
    with pytest.raises(MediaUnreadable):
        probe(bogus)


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(MediaNotFound) as err:
        probe(tmp_path / "gone.mp4")
    assert err.value.reason is FailureReason.MEDIA_NOT_FOUND


def test_audio_only_media_has_no_video_stream(tmp_path: Path) -> None:
    info = probe(audio_only(tmp_path))
    assert info.audio is not None
    with pytest.raises(NoVideoStream) as err:
        info.require_video()
    assert err.value.reason is FailureReason.NO_VIDEO_STREAM
    assert "no video stream" in err.value.message
    with pytest.raises(NoVideoStream):
        next(sample_frames(audio_only(tmp_path), fps=2))


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_a_stream_no_decoder_knows_fails_only_what_needs_it(kind: Literal["audio", "video"], tmp_path: Path) -> None:
    path = with_undecodable_stream(CLIPS[0], kind, tmp_path / "clip.mp4")
    info = probe(path)
    needed, other = (
        (info.require_audio, info.require_video) if kind == "audio" else (info.require_video, info.require_audio)
    )
    with pytest.raises(UnsupportedCodec) as err:
        needed()
    assert err.value.reason is FailureReason.UNSUPPORTED_CODEC
    assert err.value.message == f"the {kind} stream uses a codec this service cannot decode"
    assert other().codec == ("h264" if kind == "audio" else "aac")
    if kind == "video":
        with pytest.raises(UnsupportedCodec):
            next(sample_frames(path, fps=2))
        assert has_audio(path)
    else:
        assert next(sample_frames(path, fps=2)).image.shape == (240, 1280, 3)
        with pytest.raises(UnsupportedCodec):
            decode_audio(path)


def test_cover_art_is_not_a_video_stream(tmp_path: Path) -> None:
    path = audio_with_cover_art(tmp_path)
    info = probe(path)
    assert info.video is None
    with pytest.raises(NoVideoStream):
        info.require_video()
    assert info.require_audio().codec == "aac"
    # The frame sampler picks streams the way the probe does: it never OCRs the cover picture.
    with pytest.raises(NoVideoStream):
        next(sample_frames(path, fps=2))


def test_region_defaults_to_the_bottom_third() -> None:
    assert region_pixels(None, 1280, 720) == region_pixels(BOTTOM_THIRD, 1280, 720)
    r = region_pixels(None, 1280, 720)
    assert (r.x, r.y, r.width, r.height) == (0, 480, 1280, 240)
    hint = RegionHint(x=0.25, y=0.0, width=0.5, height=0.2)
    r = region_pixels(hint, 1280, 720)
    assert (r.x, r.y, r.width, r.height) == (320, 0, 640, 144)


def test_frames_are_sampled_at_the_requested_rate() -> None:
    clip = CLIPS[0]
    duration = truth_of(clip)["duration_s"]
    frames = list(sample_frames(clip, fps=2.0))
    assert abs(len(frames) - duration * 2) <= 2
    times = [f.time_s for f in frames]
    gaps = np.diff(times)
    assert times[0] == pytest.approx(0.0, abs=0.05)
    assert gaps.min() >= 0.4
    assert gaps.max() <= 0.6
    assert [f.index for f in frames] == list(range(len(frames)))
    first = frames[0]
    assert first.image.shape == (240, 1280, 3)
    assert first.image.dtype == np.uint8
    assert first.image.flags.c_contiguous


def test_a_region_hint_crops_that_region() -> None:
    hint = RegionHint(x=0.5, y=0.5, width=0.5, height=0.25)
    frames = sample_frames(CLIPS[0], fps=1.0, region=hint)
    first = next(frames)
    frames.close()
    assert first.image.shape == (180, 640, 3)
    assert (first.region.x, first.region.y) == (640, 360)


def test_skipping_non_reference_frames_keeps_the_sample_rate() -> None:
    all_frames = [f.time_s for f in sample_frames(CLIPS[0], fps=2.0)]
    kept = [f.time_s for f in sample_frames(CLIPS[0], fps=2.0, skip_non_reference=True)]
    assert abs(len(kept) - len(all_frames)) <= 2
    assert max(np.diff(kept)) <= 1.0
