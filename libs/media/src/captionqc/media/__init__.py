"""captionqc.media: open media by URI, probe it, sample frames, decode audio (claim-check storage: runtime)."""

from captionqc.media.errors import (
    MediaError,
    MediaNotFound,
    MediaTooLong,
    MediaUnreadable,
    MediaUriRejected,
    NoAudioStream,
    NoVideoStream,
    PermanentMediaError,
    TransientMediaError,
    UnsupportedCodec,
)
from captionqc.media.probe import AudioStreamInfo, MediaInfo, VideoStreamInfo, probe
from captionqc.media.source import open_media
from captionqc.media.video import BOTTOM_THIRD, PixelRegion, SampledFrame, region_pixels, sample_frames

__all__ = [
    "BOTTOM_THIRD",
    "AudioStreamInfo",
    "MediaError",
    "MediaInfo",
    "MediaNotFound",
    "MediaTooLong",
    "MediaUnreadable",
    "MediaUriRejected",
    "NoAudioStream",
    "NoVideoStream",
    "PermanentMediaError",
    "PixelRegion",
    "SampledFrame",
    "TransientMediaError",
    "UnsupportedCodec",
    "VideoStreamInfo",
    "open_media",
    "probe",
    "region_pixels",
    "sample_frames",
]
