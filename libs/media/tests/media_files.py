"""Media for the media-layer tests: the committed samples, and small files written here with PyAV when needed."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def sample_clips() -> list[Path]:
    """Every committed sample clip that has a ground truth beside it."""
    return sorted(p.with_name(p.name.replace(".truth.json", ".mp4")) for p in SAMPLES.glob("*.truth.json"))


def truth_of(clip: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(clip.with_name(clip.stem + ".truth.json").read_text(encoding="utf-8"))
    return data


def audio_only(tmp: Path) -> Path:
    """The committed audio-only sample, or an equivalent AAC file written here."""
    committed = SAMPLES / "audio_only.m4a"
    if committed.is_file():
        return committed
    path = tmp / "audio_only.m4a"
    rate = 16000
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=rate, layout="mono")
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)[None, :]
        for i in range(0, rate, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(tone[:, i : i + 1024]), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def corrupt(tmp: Path) -> Path:
    """The committed corrupt sample, or the first 20 KB of a sample clip (its index is at the end, so cut off)."""
    committed = SAMPLES / "corrupt.mp4"
    if committed.is_file():
        return committed
    path = tmp / "corrupt.mp4"
    path.write_bytes(sample_clips()[0].read_bytes()[:20_000])
    return path


def audio_with_cover_art(tmp: Path) -> Path:
    """An audio file that carries a cover picture: a one-frame "video" stream marked ``attached_pic``."""
    path = tmp / "with_cover.mp4"
    with av.open(str(audio_only(tmp))) as src, av.open(str(path), "w") as out:
        audio_in = src.streams.audio[0]
        audio_out = out.add_stream_from_template(audio_in)
        cover = out.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 64, 48, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24")
        for packet in cover.encode(picture.reformat(format="yuvj420p")):
            out.mux(packet)
        for packet in cover.encode(None):
            out.mux(packet)
        for packet in src.demux(audio_in):
            if packet.dts is not None:
                packet.stream = audio_out
                out.mux(packet)
    return path
