"""Thresholds of the checker. The service's settings map onto these one to one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CheckerConfig:
    """Tuning knobs; the defaults were chosen on the labelled samples and a freshly generated set."""

    # Findings at or above this confidence are errors; from ``min_confidence`` up to it, warnings; below, dropped.
    error_threshold: float = 0.8
    min_confidence: float = 0.5
    # The caption/speech offset is searched in [-max_offset_s, +max_offset_s] at this resolution.
    max_offset_s: float = 3.0
    offset_step_s: float = 0.1
    # A spoken word may pair with a caption word if its midpoint lies within the caption's span (shifted by the
    # offset) widened by this much on each side: ASR timestamps and caption cuts are both a little loose.
    window_padding_s: float = 0.6
    # A caption word at or above this Zipf frequency (wordfreq, log10 per billion words) counts as a real word.
    # wordfreq lists web misspellings too ("recieve" 2.75, "thier" 2.99), so it cannot be much lower.
    real_word_zipf: float = 3.0
    # Omissions: a run of caption words not heard (or speech not shown) is reported from this many words on;
    # shorter runs are mostly ASR deletions/insertions of small words.
    min_omission_words: int = 4
    # Spoken words below this ASR confidence are too uncertain to accuse a caption of leaving them out.
    min_asr_confidence_for_omission: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= self.error_threshold <= 1.0:
            raise ValueError("need 0 <= min_confidence <= error_threshold <= 1")
        if self.max_offset_s < 0 or self.offset_step_s <= 0 or self.window_padding_s < 0:
            raise ValueError("offset search range and window padding must be non-negative, the step positive")
        if self.min_omission_words < 1:
            raise ValueError("min_omission_words must be at least 1")
