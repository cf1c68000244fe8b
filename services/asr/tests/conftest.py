"""Shared fixtures: the committed sample clips, each transcribed once per session per engine."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from captionqc.asr.settings import AsrSettings, EngineKind
from captionqc.asr.stage import AsrOutcome, transcribe
from captionqc.media.audio import has_audio

# CAPTIONQC_SAMPLES points the tests at another folder of clips (e.g. a freshly generated batch).
SAMPLES = Path(os.environ.get("CAPTIONQC_SAMPLES") or Path(__file__).resolve().parents[3] / "samples")


@dataclass(frozen=True)
class SampleClip:
    media: Path
    truth: dict[str, Any]

    @property
    def name(self) -> str:
        return self.media.stem

    @property
    def spoken_text(self) -> str:
        return " ".join(caption["spoken_text"] for caption in self.truth["captions"])


def sample_clips() -> list[SampleClip]:
    clips = []
    for truth_file in sorted(SAMPLES.glob("*.truth.json")):
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
        media = truth_file.with_name(truth_file.name.removesuffix(".truth.json") + ".mp4")
        # Not the error-path clip (captions, no speech).
        if truth.get("captions") and media.is_file() and has_audio(media):
            clips.append(SampleClip(media, truth))
    return clips


SAMPLE_CLIPS = sample_clips()


@pytest.fixture(scope="session")
def whisper_outcomes() -> dict[str, AsrOutcome]:
    settings = AsrSettings()
    return {clip.name: transcribe(clip.media, settings=settings) for clip in SAMPLE_CLIPS}


@pytest.fixture(scope="session")
def pocketsphinx_outcomes() -> dict[str, AsrOutcome]:
    settings = AsrSettings(engine=EngineKind.POCKETSPHINX)
    return {clip.name: transcribe(clip.media, settings=settings) for clip in SAMPLE_CLIPS}


@pytest.fixture(params=SAMPLE_CLIPS, ids=lambda clip: clip.name)
def sample(request: pytest.FixtureRequest) -> SampleClip:
    clip: SampleClip = request.param
    return clip
