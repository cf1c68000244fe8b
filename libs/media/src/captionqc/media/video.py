"""Sample video frames at a fixed rate from a region of the picture.

One sequential decode (FFmpeg's own threads, ``thread_type="AUTO"``): measured here, seeking once per sample
was 2–3× slower than decoding every frame and converting only the sampled ones to pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np
import numpy.typing as npt

from captionqc.media.errors import MediaUnreadable, NoVideoStream, UnsupportedCodec
from captionqc.media.probe import decoder_name, open_container, picture_stream
from captionqc.schemas import RegionHint

# Broadcast captions sit in the lower third unless the job says otherwise.
BOTTOM_THIRD = RegionHint(x=0.0, y=2 / 3, width=1.0, height=1 / 3)
# A few damaged packets in a long broadcast should not fail the job; a stream that is mostly damage should.
MAX_DECODE_ERRORS = 25

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class PixelRegion:
    """A rectangle of the full frame, in pixels."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class SampledFrame:
    index: int
    time_s: float
    # BGR, height × width × 3, cropped to ``region`` (the layout OpenCV-based engines expect).
    image: Image
    region: PixelRegion


def region_pixels(region: RegionHint | None, width: int, height: int) -> PixelRegion:
    """The pixel rectangle of a fractional region (default: the bottom third), at least 1×1."""
    hint = region or BOTTOM_THIRD
    x = min(round(hint.x * width), width - 1)
    y = min(round(hint.y * height), height - 1)
    w = max(1, min(round(hint.width * width), width - x))
    h = max(1, min(round(hint.height * height), height - y))
    return PixelRegion(x=x, y=y, width=w, height=h)


def sample_frames(
    path: Path,
    *,
    fps: float,
    region: RegionHint | None = None,
    skip_non_reference: bool = False,
    decode_threads: int = 0,
) -> Iterator[SampledFrame]:
    """Yield one frame every ``1/fps`` seconds of media time (the first frame at or after each tick)."""
    if fps <= 0:
        raise ValueError("fps must be positive")
    container = open_container(path)
    try:
        stream = picture_stream(container)
        if stream is None:
            raise NoVideoStream()
        if decoder_name(stream) is None:
            raise UnsupportedCodec("video")
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = decode_threads
        if skip_non_reference:
            # No other frame depends on a non-reference frame, so skipping them leaves no artefacts; at 25 fps
            # and 2 fps sampling the nearest kept frame is at most a few frames away.
            stream.codec_context.skip_frame = "NONREF"
        time_base = stream.time_base
        start = float(stream.start_time * time_base) if stream.start_time is not None and time_base else 0.0
        period = 1.0 / fps
        next_tick = 0.0
        index = 0
        errors = 0
        crop: PixelRegion | None = None
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                errors += 1
                if errors > MAX_DECODE_ERRORS:
                    raise MediaUnreadable("the video stream is damaged: too many undecodable packets") from None
                continue
            for frame in frames:
                t = (frame.time - start) if frame.time is not None else None
                if t is None or t + 1e-6 < next_tick:
                    continue
                if crop is None:
                    crop = region_pixels(region, frame.width, frame.height)
                yield SampledFrame(index=index, time_s=round(t, 3), image=_crop(frame, crop), region=crop)
                index += 1
                # Skip ticks a long gap (or a variable frame rate) jumped over instead of emitting bursts.
                next_tick = (math.floor(t / period + 1e-6) + 1) * period
        if index == 0:
            raise MediaUnreadable("no frame of the video stream could be decoded")
    finally:
        container.close()


def _crop(frame: av.VideoFrame, crop: PixelRegion) -> Image:
    full = np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
    # A copy, so the frame buffer of the whole picture is not kept alive by the crop.
    return np.ascontiguousarray(full[crop.y : crop.y + crop.height, crop.x : crop.x + crop.width])
