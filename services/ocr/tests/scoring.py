"""Scoring OCR output against a sample clip's ground truth."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from rapidfuzz.distance import Levenshtein

from captionqc.schemas import CaptionSegment

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def sample_clips() -> list[Path]:
    return sorted(p.with_name(p.name.replace(".truth.json", ".mp4")) for p in SAMPLES.glob("*.truth.json"))


def truth_of(clip: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(clip.with_name(clip.stem + ".truth.json").read_text(encoding="utf-8"))
    return data


def no_spaces(text: str) -> str:
    return "".join(text.split())


@dataclass(frozen=True)
class CaptionScore:
    truth: str
    read: str
    errors: int


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def score_clip(segments: list[CaptionSegment], truth: dict[str, Any]) -> tuple[float, list[CaptionScore]]:
    """Character error rate (spaces ignored) with each OCR segment assigned to the caption it overlaps most.

    Segments overlapping no caption count as insertions against an empty caption, so junk reads are punished.
    """
    captions = truth["captions"]
    assigned: dict[int, list[CaptionSegment]] = {c["index"]: [] for c in captions}
    stray: list[CaptionSegment] = []
    for seg in segments:
        best = max(captions, key=lambda c: overlap(seg.start_s, seg.end_s, c["start_s"], c["end_s"]))
        if overlap(seg.start_s, seg.end_s, best["start_s"], best["end_s"]) > 0:
            assigned[best["index"]].append(seg)
        else:
            stray.append(seg)
    scores = []
    for c in captions:
        read = " ".join(s.text for s in assigned[c["index"]])
        scores.append(
            CaptionScore(
                c["displayed_text"], read, Levenshtein.distance(no_spaces(c["displayed_text"]), no_spaces(read))
            )
        )
    for seg in stray:
        scores.append(CaptionScore("", seg.text, len(no_spaces(seg.text))))
    total = sum(len(no_spaces(c["displayed_text"])) for c in captions)
    return sum(s.errors for s in scores) / total, scores


def write_audio_only(path: Path) -> None:
    """One second of AAC tone and no video, like the committed ``samples/audio_only.m4a``."""
    rate = 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)[None, :]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=rate, layout="mono")
        for i in range(0, rate, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(tone[:, i : i + 1024]), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
