"""The ASR stage: media file in, timed words out. Pure CPU work, called off the event loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from captionqc.asr.engines import AsrEngine, EngineSpec, cached_engine
from captionqc.asr.pool import ProcessPoolEngine
from captionqc.asr.settings import AsrSettings
from captionqc.asr.vad import AudioPiece, split_at_silences
from captionqc.media.audio import iter_audio_blocks, probe_audio
from captionqc.media.errors import MediaTooLong
from captionqc.schemas import AsrStats, EngineInfo, TimedWord


@dataclass(frozen=True)
class AsrOutcome:
    words: list[TimedWord]
    engine: EngineInfo
    stats: AsrStats


@runtime_checkable
class PieceParallelEngine(Protocol):
    """An engine that can run several pieces at once (see ``ProcessPoolEngine``)."""

    def transcribe_pieces(
        self, pieces: Iterable[AudioPiece], *, language: str
    ) -> Iterator[tuple[AudioPiece, list[TimedWord]]]: ...


def _one_by_one(
    engine: AsrEngine, pieces: Iterable[AudioPiece], language: str
) -> Iterator[tuple[AudioPiece, list[TimedWord]]]:
    for piece in pieces:
        yield piece, ([] if piece.silent else engine.transcribe(piece.audio, language=language))


def _shifted(words: list[TimedWord], offset_s: float) -> list[TimedWord]:
    if offset_s == 0:
        return words
    return [w.model_copy(update={"start_s": w.start_s + offset_s, "end_s": w.end_s + offset_s}) for w in words]


def transcribe(
    media_path: Path,
    *,
    language: str = "en-US",
    settings: AsrSettings | None = None,
    on_progress: Callable[[float, str], None] | None = None,
    engine: AsrEngine | None = None,
) -> AsrOutcome:
    """Transcribe the first audio stream of ``media_path`` into timed words.

    Audio is decoded in blocks and cut at quiet points into pieces of about ``settings.chunk_target_s``; pieces
    run one after another on ``engine`` (default: the engine of ``settings``, loaded once per process), or in
    parallel on a worker pool when ``settings.pool_size > 1`` or ``engine`` is a ``PieceParallelEngine``.
    Raises the permanent media errors of ``captionqc.media.errors`` (no audio stream, unreadable, too long, …).
    """
    settings = settings or AsrSettings()
    started = time.perf_counter()
    info = probe_audio(media_path)
    max_s = settings.max_media_duration_s
    if info.duration_s is not None and info.duration_s > max_s:
        raise MediaTooLong(info.duration_s, max_s)

    spec = EngineSpec.from_settings(settings)
    owned_pool: ProcessPoolEngine | None = None
    if engine is None:
        if settings.pool_size > 1:
            engine = owned_pool = ProcessPoolEngine(spec, settings.pool_size)
        else:
            engine = cached_engine(spec)
    try:
        engine_info = engine.info
        pieces = split_at_silences(
            iter_audio_blocks(media_path, max_duration_s=max_s),
            target_s=settings.chunk_target_s,
            slack_s=settings.chunk_slack_s,
        )
        results = (
            engine.transcribe_pieces(pieces, language=language)
            if isinstance(engine, PieceParallelEngine)
            else _one_by_one(engine, pieces, language)
        )
        words: list[TimedWord] = []
        decoded_s = 0.0
        expected_s = info.duration_s or 0.0
        for piece, piece_words in results:
            words.extend(_shifted(piece_words, piece.start_s))
            decoded_s = piece.start_s + piece.duration_s
            if on_progress is not None and expected_s > 0:
                on_progress(min(1.0, decoded_s / expected_s), f"transcribed {decoded_s:.0f} s of {expected_s:.0f} s")
    finally:
        if owned_pool is not None:
            owned_pool.close()

    processing_s = time.perf_counter() - started
    duration_s = decoded_s or expected_s
    stats = AsrStats(
        media_duration_s=duration_s,
        processing_s=processing_s,
        real_time_factor=processing_s / duration_s if duration_s > 0 else 0.0,
    )
    return AsrOutcome(words=words, engine=engine_info, stats=stats)
