"""Probe a media file: streams, codecs and duration; what no stage can process becomes a typed error."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error

from captionqc.media.errors import (
    MediaNotFound,
    MediaTooLong,
    MediaUnreadable,
    NoAudioStream,
    NoVideoStream,
    UnsupportedCodec,
)


@dataclass(frozen=True)
class VideoStreamInfo:
    index: int
    codec: str
    width: int
    height: int
    fps: float | None


@dataclass(frozen=True)
class AudioStreamInfo:
    index: int
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    container: str
    duration_s: float
    video: VideoStreamInfo | None
    audio: AudioStreamInfo | None

    def require_video(self) -> VideoStreamInfo:
        if self.video is None:
            raise NoVideoStream()
        return self.video

    def require_audio(self) -> AudioStreamInfo:
        if self.audio is None:
            raise NoAudioStream()
        return self.audio


def probe(path: Path, *, max_duration_s: float | None = None) -> MediaInfo:
    """Read the container header of ``path``; raise a `PermanentMediaError` for media no stage can use."""
    if not path.is_file():
        raise MediaNotFound(f"no media file at {path.name}")
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise MediaUnreadable(f"the file is not readable media (corrupt or not audio/video): {_reason(exc)}") from None
    try:
        video = _video_info(container)
        audio = _audio_info(container)
        if video is None and audio is None:
            raise MediaUnreadable("the file holds neither a video nor an audio stream")
        duration_s = _duration_s(container)
        container_name = container.format.name
    finally:
        container.close()
    if duration_s is None or duration_s <= 0:
        raise MediaUnreadable("the media's duration cannot be determined (the file may be truncated)")
    if max_duration_s is not None and duration_s > max_duration_s:
        raise MediaTooLong(duration_s, max_duration_s)
    return MediaInfo(path=path, container=container_name, duration_s=duration_s, video=video, audio=audio)


def _video_info(container: av.container.InputContainer) -> VideoStreamInfo | None:
    # Cover art in an audio file is a "video" stream of one picture: it holds no captions, so it is ignored.
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        return None
    stream = streams[0]
    codec = _require_decoder(stream.codec_context, "video")
    width, height = stream.codec_context.width, stream.codec_context.height
    if not width or not height:
        raise MediaUnreadable("the video stream has no frame size (the file may be corrupt)")
    rate = stream.average_rate or stream.guessed_rate
    return VideoStreamInfo(
        index=stream.index,
        codec=codec,
        width=width,
        height=height,
        fps=float(rate) if rate else None,
    )


def _audio_info(container: av.container.InputContainer) -> AudioStreamInfo | None:
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    codec = _require_decoder(stream.codec_context, "audio")
    return AudioStreamInfo(
        index=stream.index,
        codec=codec,
        sample_rate=stream.codec_context.sample_rate or 0,
        channels=stream.codec_context.channels or 0,
    )


def _require_decoder(codec_context: av.CodecContext | None, kind: str) -> str:
    name = codec_context.name if codec_context is not None else None
    if not name:
        raise UnsupportedCodec(f"the {kind} stream uses a codec FFmpeg does not know")
    try:
        av.Codec(name, "r")
    except (av.error.FFmpegError, ValueError):
        raise UnsupportedCodec(f"the {kind} codec {name!r} cannot be decoded by this service") from None
    return name


def _duration_s(container: av.container.InputContainer) -> float | None:
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    best: float | None = None
    for stream in container.streams:
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * Fraction(stream.time_base))
            best = seconds if best is None else max(best, seconds)
    return best


def _reason(exc: av.error.FFmpegError) -> str:
    # FFmpeg's message repeats the path; a person needs only the cause.
    return exc.strerror or type(exc).__name__
