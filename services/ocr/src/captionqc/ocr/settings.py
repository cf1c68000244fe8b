"""Settings of the OCR service (env prefix ``CAPTIONQC_OCR_``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from captionqc.media.settings import MediaStageSettings
from captionqc.media.video import BOTTOM_THIRD
from captionqc.schemas import RegionHint


class OcrEngineName(StrEnum):
    RAPIDOCR = "rapidocr"


class OcrSettings(MediaStageSettings):
    """Everything the OCR stage can be tuned by; tests build ``OcrSettings(...)`` directly."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONQC_OCR_", extra="ignore", frozen=True)

    service_name: str = "ocr"

    # Sampling and change detection.
    sample_fps: Annotated[float, Field(gt=0.0, le=30.0)] = 2.0
    default_region: RegionHint = BOTTOM_THIRD
    change_threshold: Annotated[float, Field(gt=0.0, le=255.0)] = Field(
        default=6.0,
        description="Mean absolute difference (0..255) of text-mask thumbnails above which to re-read.",
    )
    forced_ocr_interval_s: Annotated[float, Field(gt=0.0, le=60.0)] = Field(
        default=2.5,
        description="Re-read at least this often even if nothing seems to change (a safety net).",
    )
    skip_non_reference_frames: bool = False
    decode_threads: Annotated[int, Field(ge=0, le=64)] = 0
    max_media_duration_s: Annotated[float, Field(gt=0.0)] = 4 * 3600.0

    # Engine.
    engine: OcrEngineName = OcrEngineName.RAPIDOCR
    det_limit_side_len: Annotated[int, Field(ge=320, le=4096)] = 1280
    min_text_score: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    engine_threads: Annotated[int, Field(ge=-1, le=64)] = Field(
        default=-1, description="onnxruntime intra-op threads per engine (-1: onnxruntime decides)."
    )
