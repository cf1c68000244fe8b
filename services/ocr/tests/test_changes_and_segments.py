"""The caption change detector on real frames, and the merging of reads into segments."""

from __future__ import annotations

import numpy as np
import pytest

from captionqc.media.video import sample_frames
from captionqc.ocr.changes import CaptionChangeDetector, text_mask_thumbnail
from captionqc.ocr.segments import FrameRead, SegmentBuilder, same_caption
from captionqc.schemas import BoundingBox

from .scoring import sample_clips, truth_of


def caption_at(truth: dict[str, object], t: float) -> int | None:
    for cap in truth["captions"]:  # type: ignore[attr-defined]
        if cap["start_s"] <= t < cap["end_s"]:
            return int(cap["index"])
    return None


@pytest.mark.parametrize("clip", sample_clips(), ids=lambda p: p.stem)
def test_detector_fires_on_every_caption_change_and_rarely_otherwise(clip: object) -> None:
    truth = truth_of(clip)  # type: ignore[arg-type]
    # Forced reads off (a huge interval), so only the mask decides.
    detector = CaptionChangeDetector(threshold=6.0, forced_interval_s=1e9)
    shown: list[int | None] = []
    fired: list[bool] = []
    for frame in sample_frames(clip, fps=2.0):  # type: ignore[arg-type]
        fired.append(detector.needs_ocr(frame.image, frame.time_s))
        shown.append(caption_at(truth, frame.time_s))
    changes = [i for i in range(1, len(shown)) if shown[i] != shown[i - 1]]
    # A sample within 0.1 s of a caption edge may see the old or the new caption: allow the fire one frame late.
    for i in changes:
        assert fired[i] or (i + 1 < len(fired) and fired[i + 1]), f"missed the change at frame {i}"
    spurious = sum(fired) - 1 - len(changes)
    assert spurious <= 2


def test_blank_strip_has_an_empty_mask_and_text_has_strokes() -> None:
    blank = np.full((240, 1280, 3), 128, dtype=np.uint8)
    assert text_mask_thumbnail(blank).max() == 0.0
    boxed = blank.copy()
    boxed[100:160, 400:900] = 10
    boxed[115:145, 420:880:6] = 250
    thumb = text_mask_thumbnail(boxed)
    assert thumb.shape == (16, 64)
    assert thumb.mean() > 1.0


def test_detector_forces_a_read_every_interval() -> None:
    detector = CaptionChangeDetector(threshold=6.0, forced_interval_s=2.5)
    blank = np.zeros((240, 1280, 3), dtype=np.uint8)
    fired = [t for t in np.arange(0.0, 10.0, 0.5) if detector.needs_ocr(blank, float(t))]
    assert fired == [0.0, 2.5, 5.0, 7.5]


def read(t: float, text: str, conf: float = 0.9, y: int = 500) -> FrameRead:
    return FrameRead(t, text, conf, BoundingBox(x=100, y=y, width=800, height=60) if text else None)


def test_reads_merge_into_segments_and_a_blank_ends_one() -> None:
    builder = SegmentBuilder(sample_period_s=0.5, duration_s=6.0)
    for r in [
        read(0.0, ""),
        read(0.5, "Good evening", 0.95),
        read(1.0, "Goodevening", 0.9),
        read(1.5, "Good evening", 0.97, y=498),
        read(2.0, ""),
        read(2.5, "Good evening"),
        read(3.0, "The weather now"),
        read(3.5, "The weather now"),
    ]:
        builder.add(r)
    segments = builder.finish()
    assert [(s.start_s, s.end_s, s.text) for s in segments] == [
        (0.25, 1.75, "Good evening"),
        (2.25, 2.75, "Good evening"),
        (2.75, 3.75, "The weather now"),
    ]
    assert segments[0].confidence == pytest.approx(0.96)
    assert segments[0].bbox == BoundingBox(x=100, y=498, width=800, height=62)


def test_near_identical_reads_are_the_same_caption() -> None:
    assert same_caption("Councillors voted to spend 86,000 pounds", "Councillors voted tospend 86,0o0 pounds")
    assert not same_caption("Heavy rain will move across", "The south will stay dry")
    assert not same_caption("", "Anything")
