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
    # None: FFmpeg has no decoder for the stream's codec (a stage that needs it fails; the others go on).
    codec: str | None
    width: int
    height: int
    fps: float | None


@dataclass(frozen=True)
class AudioStreamInfo:
    index: int
    codec: str | None
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
        """The video stream, or the permanent error that says why the captions cannot be read."""
        if self.video is None:
            raise NoVideoStream()
        if self.video.codec is None:
            raise UnsupportedCodec("video")
        return self.video

    def require_audio(self) -> AudioStreamInfo:
        """The audio stream, or the permanent error that says why the speech cannot be transcribed."""
        if self.audio is None:
            raise NoAudioStream()
        if self.audio.codec is None:
            raise UnsupportedCodec("audio")
        return self.audio


def open_container(path: Path) -> av.container.InputContainer:
    """Open a local media file; a missing file or one FFmpeg cannot open is a permanent media error."""
    if not path.is_file():
        raise MediaNotFound(f"no media file at {path.name}")
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise MediaUnreadable(
            f"the file is not readable media (corrupt or not audio/video): {ffmpeg_reason(exc)}"
        ) from None


def decoder_name(stream: av.stream.Stream) -> str | None:
    """The name of the decoder for ``stream``, or None when this FFmpeg build has none for its codec."""
    # PyAV gives a stream no codec context when FFmpeg knows no decoder for it (an unknown tag, a codec left out
    # of the build); a context whose codec cannot open for reading is just as unusable.
    ctx = stream.codec_context
    if ctx is None or not ctx.name:
        return None
    try:
        av.Codec(ctx.name, "r")
    except (av.error.FFmpegError, ValueError):
        return None
    return str(ctx.name)


def probe(path: Path, *, max_duration_s: float | None = None) -> MediaInfo:
    """Describe ``path``'s first video and audio streams and its duration.

    A stream whose codec cannot be decoded is described (``codec=None``), not refused: only the stage that needs
    that stream fails, through `MediaInfo.require_video` / `require_audio`.
    """
    container = open_container(path)
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


def picture_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The first video stream that moves, or None."""
    # Cover art in an audio file is a "video" stream of one picture: it holds no captions, so it is ignored.
    return next((s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic), None)


def _video_info(container: av.container.InputContainer) -> VideoStreamInfo | None:
    stream = picture_stream(container)
    if stream is None:
        return None
    codec = decoder_name(stream)
    if codec is None:
        return VideoStreamInfo(index=stream.index, codec=None, width=0, height=0, fps=None)
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
    codec = decoder_name(stream)
    if codec is None:
        return AudioStreamInfo(index=stream.index, codec=None, sample_rate=0, channels=0)
    return AudioStreamInfo(
        index=stream.index,
        codec=codec,
        sample_rate=stream.codec_context.sample_rate or 0,
        channels=stream.codec_context.channels or 0,
    )


def _duration_s(container: av.container.InputContainer) -> float | None:
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    best: float | None = None
    for stream in container.streams:
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * Fraction(stream.time_base))
            best = seconds if best is None else max(best, seconds)
    return best


def ffmpeg_reason(exc: av.error.FFmpegError) -> str:
    # FFmpeg's message repeats the path; a person needs only the cause.
    return exc.strerror or type(exc).__name__
