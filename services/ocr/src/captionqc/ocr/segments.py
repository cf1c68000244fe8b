"""Merge per-frame reads into caption segments: one segment per caption, from its first to its last frame."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from captionqc.schemas import BoundingBox, CaptionSegment

# Two reads of one caption differ by OCR jitter (a dropped space, one misread letter on a busy frame); two
# different captions in a row share far less than this.
SAME_CAPTION_RATIO = 0.85


@dataclass(frozen=True)
class FrameRead:
    """What a sampled frame shows: caption text ("" for none), confidence, box in the full frame."""

    time_s: float
    text: str
    confidence: float
    bbox: BoundingBox | None


def _key(text: str) -> str:
    # OCR often drops the spaces between words, so spacing never decides whether two reads differ.
    return "".join(text.split())


def same_caption(a: str, b: str) -> bool:
    ka, kb = _key(a), _key(b)
    if ka == kb:
        return True
    if not ka or not kb:
        return False
    return SequenceMatcher(None, ka, kb, autojunk=False).ratio() >= SAME_CAPTION_RATIO


def union_box(a: BoundingBox | None, b: BoundingBox | None) -> BoundingBox | None:
    if a is None or b is None:
        return a or b
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    x1, y1 = max(a.x + a.width, b.x + b.width), max(a.y + a.height, b.y + b.height)
    return BoundingBox(x=x0, y=y0, width=x1 - x0, height=y1 - y0)


@dataclass
class _Open:
    reads: list[FrameRead] = field(default_factory=list)

    def to_segment(self, half_period: float, duration_s: float) -> CaptionSegment:
        # The most frequent read wins (a forced re-read may be a letter off); ties go to the more confident.
        counts = Counter(r.text for r in self.reads)
        best_conf: dict[str, float] = {}
        for r in self.reads:
            best_conf[r.text] = max(best_conf.get(r.text, 0.0), r.confidence)
        text = max(counts, key=lambda t: (counts[t], best_conf[t], t))
        chosen = [r.confidence for r in self.reads if r.text == text]
        bbox: BoundingBox | None = None
        for r in self.reads:
            bbox = union_box(bbox, r.bbox)
        # Each sample stands for the half period either side of it: the caption appeared somewhere between the
        # previous sample and this one, and the midpoint is the unbiased guess.
        start = max(0.0, self.reads[0].time_s - half_period)
        end = min(duration_s, self.reads[-1].time_s + half_period) if duration_s > 0 else self.reads[-1].time_s
        return CaptionSegment(
            start_s=round(start, 3),
            end_s=round(max(end, start), 3),
            text=text,
            confidence=round(sum(chosen) / len(chosen), 4),
            bbox=bbox,
        )


@dataclass
class SegmentBuilder:
    """Feed reads in time order with `add`; `finish` returns the segments."""

    sample_period_s: float
    duration_s: float
    _open: _Open | None = field(default=None, init=False)
    _done: list[CaptionSegment] = field(default_factory=list, init=False)

    def add(self, read: FrameRead) -> None:
        if self._open is not None and (not read.text or not same_caption(self._open.reads[-1].text, read.text)):
            self._close()
        if read.text:
            if self._open is None:
                self._open = _Open()
            self._open.reads.append(read)

    def _close(self) -> None:
        if self._open is not None:
            segment = self._open.to_segment(self.sample_period_s / 2, self.duration_s)
            if self._done and segment.start_s < self._done[-1].end_s:
                # Samples are not exactly evenly spaced; back-to-back captions must not overlap.
                segment = segment.model_copy(update={"start_s": self._done[-1].end_s})
            self._done.append(segment)
            self._open = None

    def finish(self) -> list[CaptionSegment]:
        self._close()
        return list(self._done)
