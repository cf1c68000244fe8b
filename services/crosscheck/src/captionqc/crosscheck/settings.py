"""Settings of the cross-check worker (env prefix ``CAPTIONQC_CROSSCHECK_``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from captionqc.crosscheck.checker import CheckerConfig
from captionqc.runtime.settings import ServiceSettings


class CrosscheckSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CAPTIONQC_CROSSCHECK_", extra="ignore", frozen=True)

    service_name: str = "crosscheck"
    health_port: Annotated[int, Field(ge=0, le=65535)] = 8093
    results_uri: str = Field(
        default="var/results", description="Where claim-checked OCR/ASR results live (a folder or gs://bucket/prefix)."
    )
    max_in_flight: Annotated[int, Field(ge=1, le=64)] = 4
    # Checker thresholds (see CheckerConfig for what each one means).
    error_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.8
    min_confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    max_offset_s: Annotated[float, Field(ge=0.0, le=30.0)] = 3.0
    window_padding_s: Annotated[float, Field(ge=0.0, le=5.0)] = 0.6
    min_omission_words: Annotated[int, Field(ge=1, le=50)] = 3

    def checker_config(self) -> CheckerConfig:
        return CheckerConfig(
            error_threshold=self.error_threshold,
            min_confidence=self.min_confidence,
            max_offset_s=self.max_offset_s,
            window_padding_s=self.window_padding_s,
            min_omission_words=self.min_omission_words,
        )
