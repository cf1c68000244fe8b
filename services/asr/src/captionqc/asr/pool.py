"""Transcribe audio pieces on a pool of worker processes, each holding its own engine.

CTranslate2 and pocketsphinx each keep one core busy per piece (``cpu_threads=1`` measured fastest here), so long
media uses several cores by running pieces side by side. Workers are spawned, not forked: the parent may already
run gRPC and CTranslate2 threads, which do not survive a fork.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from captionqc.asr.engines import EngineSpec, cached_engine
from captionqc.asr.vad import AudioPiece
from captionqc.media.audio import AudioArray
from captionqc.schemas import EngineInfo, TimedWord


def _warm(spec: EngineSpec) -> None:
    cached_engine(spec)


def _engine_info(spec: EngineSpec) -> EngineInfo:
    return cached_engine(spec).info


def _transcribe_in_worker(spec: EngineSpec, audio: AudioArray, language: str) -> list[TimedWord]:
    return cached_engine(spec).transcribe(audio, language=language)


class ProcessPoolEngine:
    """An ``AsrEngine`` whose work runs in ``workers`` processes; ``transcribe_pieces`` runs pieces in parallel."""

    def __init__(self, spec: EngineSpec, workers: int) -> None:
        self._spec = spec
        self._workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_warm,
            initargs=(spec,),
        )
        self._info: EngineInfo | None = None

    @property
    def info(self) -> EngineInfo:
        if self._info is None:
            self._info = self._pool.submit(_engine_info, self._spec).result()
        return self._info

    def transcribe(self, audio: AudioArray, *, language: str) -> list[TimedWord]:
        return self._pool.submit(_transcribe_in_worker, self._spec, audio, language).result()

    def transcribe_pieces(
        self, pieces: Iterable[AudioPiece], *, language: str
    ) -> Iterator[tuple[AudioPiece, list[TimedWord]]]:
        """Words per piece, in piece order; at most two pieces per worker are in flight (bounded memory)."""
        in_flight: deque[tuple[AudioPiece, Future[list[TimedWord]] | None]] = deque()
        try:
            for piece in pieces:
                future = (
                    None
                    if piece.silent
                    else self._pool.submit(_transcribe_in_worker, self._spec, piece.audio, language)
                )
                in_flight.append((piece, future))
                while len(in_flight) >= 2 * self._workers:
                    yield _settle(in_flight.popleft())
            while in_flight:
                yield _settle(in_flight.popleft())
        finally:
            for _, future in in_flight:
                if future is not None:
                    future.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ProcessPoolEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _settle(item: tuple[AudioPiece, Future[list[TimedWord]] | None]) -> tuple[AudioPiece, list[TimedWord]]:
    piece, future = item
    return piece, [] if future is None else future.result()
