"""OCR each sample clip once per test session: RapidOCR costs ~0.2–0.5 s a crop on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from captionqc.ocr.engine import OcrEngine, engine_for
from captionqc.ocr.settings import OcrSettings
from captionqc.ocr.stage import OcrOutcome, read_captions

from .scoring import sample_clips


@pytest.fixture(scope="session")
def ocr_settings() -> OcrSettings:
    return OcrSettings()


@pytest.fixture(scope="session")
def ocr_engine(ocr_settings: OcrSettings) -> OcrEngine:
    return engine_for(ocr_settings)


@pytest.fixture(scope="session")
def sample_outcomes(ocr_settings: OcrSettings, ocr_engine: OcrEngine) -> dict[Path, OcrOutcome]:
    clips = sample_clips()
    assert clips, "no sample clips with ground truth under samples/"
    return {clip: read_captions(clip, settings=ocr_settings, engine=ocr_engine) for clip in clips}
