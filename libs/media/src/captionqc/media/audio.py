"""Audio decoding for speech recognition: any container PyAV can read → 16 kHz mono float32 in [-1, 1].

PyAV carries its own FFmpeg, so nothing is shelled out. Decoding streams in blocks (``iter_audio_blocks``) so a
caller can cut long media into pieces and start transcribing before the whole file is decoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np
import numpy.typing as npt

from captionqc.media.errors import MediaTooLong, MediaUnreadable, NoAudioStream, UnsupportedCodec
from captionqc.media.probe import decoder_name, ffmpeg_reason, open_container

SAMPLE_RATE = 16_000

AudioArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about its first audio stream, before decoding."""

    duration_s: float | None
    codec: str
    source_rate: int
    channels: int


def probe_audio(path: Path) -> AudioInfo:
    """Open ``path`` and describe its audio stream; raise the permanent media error that says why not."""
    container = open_container(path)
    try:
        stream = _audio_stream(container, path)
        return _info(container, stream)
    finally:
        container.close()


def has_audio(path: Path) -> bool:
    """Whether ``path`` has an audio stream; other media errors (missing, unreadable) still raise."""
    try:
        probe_audio(path)
    except NoAudioStream:
        return False
    return True


def iter_audio_blocks(path: Path, *, max_duration_s: float | None = None) -> Iterator[AudioArray]:
    """Yield the first audio stream of ``path`` as consecutive 16 kHz mono float32 blocks.

    Raises ``MediaNotFound``, ``MediaUnreadable``, ``NoAudioStream``, ``UnsupportedCodec`` or ``MediaTooLong``
    (checked against the container's duration first, and again while decoding since containers can lie).
    """
    container = open_container(path)
    try:
        stream = _audio_stream(container, path)
        info = _info(container, stream)
        if max_duration_s is not None and info.duration_s is not None and info.duration_s > max_duration_s:
            raise MediaTooLong(info.duration_s, max_duration_s)
        max_samples = None if max_duration_s is None else int(max_duration_s * SAMPLE_RATE)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        emitted = 0
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    for out in resampler.resample(frame):
                        block = _to_array(out)
                        emitted += block.size
                        if max_samples is not None and emitted > max_samples:
                            raise MediaTooLong(emitted / SAMPLE_RATE, max_duration_s or 0.0)
                        yield block
            # The resampler holds back a few samples for its filter; flushing gets the tail of the speech.
            for out in resampler.resample(None):
                yield _to_array(out)
        except av.error.FFmpegError as exc:
            raise MediaUnreadable(f"the audio of {path.name} could not be decoded: {ffmpeg_reason(exc)}") from exc
    finally:
        container.close()


def decode_audio(path: Path, *, max_duration_s: float | None = None) -> AudioArray:
    """The whole first audio stream of ``path`` as one 16 kHz mono float32 array."""
    blocks = list(iter_audio_blocks(path, max_duration_s=max_duration_s))
    if not blocks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(blocks)


def _audio_stream(container: av.container.InputContainer, path: Path) -> av.audio.stream.AudioStream:
    if not container.streams.audio:
        raise NoAudioStream(f"{path.name} has no audio stream, so there is no speech to transcribe")
    stream = container.streams.audio[0]
    if decoder_name(stream) is None:
        raise UnsupportedCodec("audio")
    return stream


def _info(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> AudioInfo:
    duration_s: float | None = None
    if stream.duration is not None and stream.time_base is not None:
        duration_s = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration_s = container.duration / av.time_base
    ctx = stream.codec_context
    return AudioInfo(duration_s=duration_s, codec=ctx.name, source_rate=ctx.sample_rate, channels=ctx.channels)


def _to_array(frame: av.AudioFrame) -> AudioArray:
    # Packed "flt" mono: one plane of float32 samples; copy so the block outlives FFmpeg's frame buffer.
    return np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1).copy()
