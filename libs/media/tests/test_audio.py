"""Audio decoding on real media: the committed samples and small files written here with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from captionqc.media.audio import SAMPLE_RATE, decode_audio, has_audio, iter_audio_blocks, probe_audio
from captionqc.media.errors import MediaNotFound, MediaTooLong, MediaUnreadable, NoAudioStream
from captionqc.schemas import FailureReason

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def write_tone(path: Path, *, seconds: float, rate: int, layout: str, codec: str = "aac", hz: float = 440.0) -> None:
    """A sine tone (left channel only for stereo, so a wrong downmix shows) in an audio-only container."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    tone = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    channels = 2 if layout == "stereo" else 1
    planes = np.zeros((channels, n), dtype=np.float32)
    planes[0] = tone
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        step = 1024
        for i in range(0, n, step):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(planes[:, i : i + step]), format="fltp", layout=layout
            )
            frame.sample_rate = rate
            frame.pts = i
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def write_video_only(path: Path, *, seconds: float = 1.0) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * 10)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20 % 255, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def sample_clips() -> list[Path]:
    """The committed clips with speech (``silent_video.mp4`` has captions but no audio stream)."""
    clips = (p.with_name(p.name.removesuffix(".truth.json") + ".mp4") for p in SAMPLES.glob("*.truth.json"))
    return sorted(clip for clip in clips if clip.is_file() and has_audio(clip))


@pytest.fixture
def silent_video(tmp_path: Path) -> Path:
    committed = SAMPLES / "silent_video.mp4"
    if committed.is_file():
        return committed
    path = tmp_path / "silent_video.mp4"
    write_video_only(path)
    return path


@pytest.fixture
def corrupt_media(tmp_path: Path) -> Path:
    committed = SAMPLES / "corrupt.mp4"
    if committed.is_file():
        return committed
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return path


@pytest.mark.parametrize("layout", ["mono", "stereo"])
def test_resamples_to_16k_mono_float32(tmp_path: Path, layout: str) -> None:
    path = tmp_path / f"tone_{layout}.m4a"
    write_tone(path, seconds=2.0, rate=44_100, layout=layout)
    info = probe_audio(path)
    assert info.source_rate == 44_100
    assert info.channels == (2 if layout == "stereo" else 1)

    audio = decode_audio(path)

    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert abs(audio.size / SAMPLE_RATE - 2.0) < 0.1
    assert float(np.abs(audio).max()) <= 1.0
    # The 440 Hz tone survives resampling: the spectrum peaks at 440 Hz (1 Hz bins over a 1 s window).
    window = audio[SAMPLE_RATE // 2 : SAMPLE_RATE // 2 + SAMPLE_RATE]
    peak_hz = int(np.argmax(np.abs(np.fft.rfft(window))))
    assert abs(peak_hz - 440) <= 2
    rms = float(np.sqrt(np.mean(np.square(window))))
    # FFmpeg's stereo→mono downmix takes each channel at -3 dB (×0.707), so a tone on one channel loses 3 dB.
    expected = 0.5 / np.sqrt(2) * (np.sqrt(0.5) if layout == "stereo" else 1.0)
    assert rms == pytest.approx(expected, rel=0.2)


def test_blocks_concatenate_to_the_whole(tmp_path: Path) -> None:
    path = tmp_path / "tone.m4a"
    write_tone(path, seconds=1.5, rate=48_000, layout="mono")
    blocks = list(iter_audio_blocks(path))
    assert len(blocks) > 1
    assert np.array_equal(np.concatenate(blocks), decode_audio(path))


@pytest.mark.parametrize("clip", sample_clips(), ids=lambda p: p.name)
def test_decodes_the_committed_samples(clip: Path) -> None:
    info = probe_audio(clip)
    audio = decode_audio(clip)
    assert info.duration_s is not None
    assert abs(audio.size / SAMPLE_RATE - info.duration_s) < 0.2
    assert float(np.sqrt(np.mean(np.square(audio)))) > 0.01  # there is speech in it


def test_no_audio_stream(silent_video: Path) -> None:
    with pytest.raises(NoAudioStream) as caught:
        decode_audio(silent_video)
    assert caught.value.reason is FailureReason.NO_AUDIO_STREAM
    assert "no audio stream" in caught.value.message
    assert not has_audio(silent_video)


def test_corrupt_media_is_unreadable(corrupt_media: Path) -> None:
    with pytest.raises(MediaUnreadable) as caught:
        decode_audio(corrupt_media)
    assert caught.value.reason is FailureReason.MEDIA_UNREADABLE
    with pytest.raises(MediaUnreadable):
        has_audio(corrupt_media)  # only a missing audio stream means "no"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaNotFound):
        decode_audio(tmp_path / "nope.mp4")


def test_longer_than_allowed(tmp_path: Path) -> None:
    path = tmp_path / "tone.m4a"
    write_tone(path, seconds=3.0, rate=16_000, layout="mono")
    with pytest.raises(MediaTooLong) as caught:
        decode_audio(path, max_duration_s=1.0)
    assert caught.value.reason is FailureReason.MEDIA_TOO_LONG
