"""The OCR stage: sampled frames → change detection → OCR → caption segments. CPU work on a local file.

Called off the event loop by the service (and directly by the evaluation harness and the Cloud Run Job).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from captionqc.media.probe import probe
from captionqc.media.video import PixelRegion, sample_frames
from captionqc.ocr.changes import CaptionChangeDetector
from captionqc.ocr.engine import OcrEngine, TextLine, engine_for
from captionqc.ocr.segments import FrameRead, SegmentBuilder
from captionqc.ocr.settings import OcrSettings
from captionqc.schemas import BoundingBox, CaptionSegment, EngineInfo, OcrStats, RegionHint

ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class OcrOutcome:
    segments: list[CaptionSegment]
    engine: EngineInfo
    stats: OcrStats


def read_captions(
    media_path: Path,
    *,
    region: RegionHint | None = None,
    settings: OcrSettings | None = None,
    on_progress: ProgressCallback | None = None,
    engine: OcrEngine | None = None,
) -> OcrOutcome:
    """Read the burned-in captions of a local media file; raise a `PermanentMediaError` for unusable media."""
    settings = settings or OcrSettings()
    started = time.perf_counter()
    info = probe(media_path, max_duration_s=settings.max_media_duration_s)
    info.require_video()
    engine = engine or engine_for(settings)
    detector = CaptionChangeDetector(
        threshold=settings.change_threshold, forced_interval_s=settings.forced_ocr_interval_s
    )
    period = 1.0 / settings.sample_fps
    builder = SegmentBuilder(sample_period_s=period, duration_s=info.duration_s)
    sampled = ocred = 0
    current = FrameRead(time_s=0.0, text="", confidence=0.0, bbox=None)
    last_progress = time.monotonic()
    for frame in sample_frames(
        media_path,
        fps=settings.sample_fps,
        region=region or settings.default_region,
        skip_non_reference=settings.skip_non_reference_frames,
        decode_threads=settings.decode_threads,
    ):
        sampled += 1
        if detector.needs_ocr(frame.image, frame.time_s):
            ocred += 1
            current = frame_read(frame.time_s, engine.read(frame.image), frame.region)
        else:
            current = replace(current, time_s=frame.time_s)
        builder.add(current)
        if on_progress is not None and time.monotonic() - last_progress >= settings.progress_interval_s:
            last_progress = time.monotonic()
            fraction = min(frame.time_s / info.duration_s, 0.99)
            on_progress(fraction, f"read {frame.time_s:.0f} of {info.duration_s:.0f} s ({ocred} OCR calls)")
    segments = builder.finish()
    if on_progress is not None:
        on_progress(1.0, f"{len(segments)} captions read from {sampled} frames ({ocred} OCR calls)")
    stats = OcrStats(
        media_duration_s=round(info.duration_s, 3),
        frames_sampled=sampled,
        frames_ocred=ocred,
        processing_s=round(time.perf_counter() - started, 3),
    )
    return OcrOutcome(segments=segments, engine=engine.info, stats=stats)


def frame_read(time_s: float, lines: list[TextLine], region: PixelRegion) -> FrameRead:
    """One frame's caption: its lines top to bottom joined by a space, boxes moved into full-frame pixels."""
    if not lines:
        return FrameRead(time_s=time_s, text="", confidence=0.0, bbox=None)
    text = " ".join(line.text for line in lines)
    # Weigh each line's confidence by its length, so a confident long line is not dragged down by a short one.
    chars = sum(len(line.text) for line in lines)
    confidence = sum(line.confidence * len(line.text) for line in lines) / chars
    x0 = min(line.box[0] for line in lines)
    y0 = min(line.box[1] for line in lines)
    x1 = max(line.box[0] + line.box[2] for line in lines)
    y1 = max(line.box[1] + line.box[3] for line in lines)
    bbox = BoundingBox(x=region.x + x0, y=region.y + y0, width=x1 - x0, height=y1 - y0)
    return FrameRead(time_s=time_s, text=text, confidence=min(1.0, confidence), bbox=bbox)
