"""Benchmark the OCR and ASR stages on the committed sample clips, in one run (prints tables; never fails on timing).

.venv/bin/python bench/stages.py [--only ocr|asr] [CLIP.mp4 ...]

Each stage runs in its own child process, as each service does, so its peak RSS is its own. Engines are loaded
before the clock starts (a worker loads them once at start-up); the load time is reported separately.

Sections:
- `bench_ocr` (OCR engineer): stage seconds, frames sampled vs OCR'd, seconds per OCR call, decode-only seconds,
  real-time factor, character error rate against the ground truth.
- `bench_asr` (ASR engineer): stage seconds vs the bare engine on the same audio, real-time factor, WER.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


@dataclass
class StageReport:
    """What a stage's bench function returns: one table, plus its process's peak RSS and free-form notes."""

    stage: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0


def sample_clips() -> list[Path]:
    return sorted(p.with_name(p.name.replace(".truth.json", ".mp4")) for p in SAMPLES.glob("*.truth.json"))


def truth_of(clip: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(clip.with_name(clip.stem + ".truth.json").read_text(encoding="utf-8"))
    return data


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------------- OCR


def bench_ocr(clips: list[Path]) -> StageReport:
    import numpy as np

    from captionqc.media.video import sample_frames
    from captionqc.ocr.engine import TextLine, engine_for
    from captionqc.ocr.settings import OcrSettings
    from captionqc.ocr.stage import read_captions
    from captionqc.schemas import EngineInfo

    settings = OcrSettings()
    started = time.perf_counter()
    engine = engine_for(settings)
    load_s = time.perf_counter() - started

    class TimedEngine:
        """The real engine, with each call timed."""

        def __init__(self) -> None:
            self.calls: list[float] = []

        @property
        def info(self) -> EngineInfo:
            return engine.info

        def read(self, image: np.typing.NDArray[np.uint8]) -> list[TextLine]:
            t0 = time.perf_counter()
            try:
                return engine.read(image)
            finally:
                self.calls.append(time.perf_counter() - t0)

    columns = [
        "clip",
        "media s",
        "stage s",
        "RTF",
        "decode s",
        "sampled",
        "OCR'd",
        "OCR'd %",
        "s/OCR call",
        "OCR s",
        "captions",
        "CER",
    ]
    rows: list[list[str]] = []
    totals = {"media": 0.0, "stage": 0.0, "decode": 0.0, "sampled": 0, "ocred": 0, "ocr_s": 0.0, "err": 0, "chars": 0}
    for clip in clips:
        truth = truth_of(clip)
        t0 = time.perf_counter()
        for _ in sample_frames(clip, fps=settings.sample_fps, region=settings.default_region):
            pass
        decode_s = time.perf_counter() - t0
        timed = TimedEngine()
        t0 = time.perf_counter()
        outcome = read_captions(clip, settings=settings, engine=timed)
        stage_s = time.perf_counter() - t0
        # CER with spaces ignored, segments and captions concatenated in time order (each clip's captions do not
        # overlap, so order is enough here; the tests map them by time overlap).
        read = "".join("".join(s.text.split()) for s in outcome.segments)
        want = "".join("".join(c["displayed_text"].split()) for c in truth["captions"])
        errors = Levenshtein.distance(want, read)
        stats = outcome.stats
        ocr_s = sum(timed.calls)
        per_call = ocr_s / len(timed.calls) if timed.calls else 0.0
        rows.append(
            [
                clip.stem,
                f"{stats.media_duration_s:.1f}",
                f"{stage_s:.2f}",
                f"{stage_s / stats.media_duration_s:.3f}",
                f"{decode_s:.2f}",
                str(stats.frames_sampled),
                str(stats.frames_ocred),
                f"{100 * stats.frames_ocred / max(stats.frames_sampled, 1):.0f}%",
                f"{per_call:.3f}",
                f"{ocr_s:.2f}",
                f"{len(outcome.segments)}/{len(truth['captions'])}",
                f"{100 * errors / max(len(want), 1):.2f}%",
            ]
        )
        totals["media"] += stats.media_duration_s
        totals["stage"] += stage_s
        totals["decode"] += decode_s
        totals["sampled"] += stats.frames_sampled
        totals["ocred"] += stats.frames_ocred
        totals["ocr_s"] += ocr_s
        totals["err"] += errors
        totals["chars"] += len(want)
    if clips:
        rows.append(
            [
                "ALL",
                f"{totals['media']:.1f}",
                f"{totals['stage']:.2f}",
                f"{totals['stage'] / totals['media']:.3f}",
                f"{totals['decode']:.2f}",
                str(totals["sampled"]),
                str(totals["ocred"]),
                f"{100 * totals['ocred'] / max(totals['sampled'], 1):.0f}%",
                f"{totals['ocr_s'] / max(totals['ocred'], 1):.3f}",
                f"{totals['ocr_s']:.2f}",
                "",
                f"{100 * totals['err'] / max(totals['chars'], 1):.2f}%",
            ]
        )
    notes = [
        f"engine {engine.info.name} {engine.info.version}, loaded in {load_s:.2f} s (not in the stage time)",
        f"{settings.sample_fps:g} fps from the bottom third; change threshold {settings.change_threshold:g}, "
        f"forced read every {settings.forced_ocr_interval_s:g} s",
        "stage s = probe + decode + change detection + OCR + segment merging; decode s = a separate decode-only pass",
    ]
    return StageReport("OCR", columns, rows, notes, _peak_rss_mb())


# ---------------------------------------------------------------------------------------------------- ASR


def bench_asr(clips: list[Path], repeats: int = 2) -> StageReport:
    """The ASR engineer's section: stage seconds vs the bare engine on the same audio, RTF, WER, peak RSS.

    "Bare engine" is the engine called directly on the already decoded 16 kHz audio (faster-whisper's
    ``WhisperModel.transcribe`` with the same options, words iterated; for pocketsphinx the engine's own decoding
    of the whole audio, i.e. its two passes with dictionary, noise floor and speaker adaptation, since a default
    decoder would do a different, smaller job): the stage adds probing, decoding, cutting into pieces, number
    joining and building the result. Each figure is
    the best of ``repeats`` runs (pocketsphinx: one run), stage and bare interleaved so load changes hit both.
    """
    import numpy as np

    from captionqc.asr.engines import EngineSpec, PocketsphinxEngine, WhisperEngine, cached_engine
    from captionqc.asr.settings import AsrSettings, EngineKind
    from captionqc.asr.stage import transcribe
    from captionqc.asr.wer import word_error_rate
    from captionqc.media.audio import decode_audio, has_audio

    speech_clips = [c for c in clips if has_audio(c)]
    columns = ["engine", "clip", "media s", "stage s", "bare s", "stage/bare", "RTF", "WER"]
    rows: list[list[str]] = []
    notes: list[str] = []
    for kind in (EngineKind.WHISPER, EngineKind.POCKETSPHINX):
        settings = AsrSettings(engine=kind)
        t0 = time.perf_counter()
        engine = cached_engine(EngineSpec.from_settings(settings))
        notes.append(f"{engine.info.name} {engine.info.version} loaded in {time.perf_counter() - t0:.2f} s (not timed)")
        runs = repeats if kind is EngineKind.WHISPER else 1

        def bare(
            audio: np.typing.NDArray[np.float32],
            engine: Any = engine,
            kind: EngineKind = kind,
            beam: int = settings.beam_size,
        ) -> int:
            if kind is EngineKind.WHISPER:
                assert isinstance(engine, WhisperEngine)
                segments, _ = engine._model.transcribe(  # the very model the stage uses, called directly
                    audio, language="en", beam_size=beam, word_timestamps=True, vad_filter=False
                )
                return sum(len(s.words or []) for s in segments)
            assert isinstance(engine, PocketsphinxEngine)
            return len(engine.transcribe(audio, language="en-GB"))

        total = {"media": 0.0, "stage": 0.0, "bare": 0.0}
        for clip in speech_clips:
            audio = decode_audio(clip)
            stage_times, bare_times = [], []
            outcome = None
            for _ in range(runs):
                t0 = time.perf_counter()
                outcome = transcribe(clip, settings=settings, engine=engine)
                stage_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                bare(audio)
                bare_times.append(time.perf_counter() - t0)
            assert outcome is not None
            media_s = outcome.stats.media_duration_s
            stage_s, bare_s = min(stage_times), min(bare_times)
            spoken = " ".join(c["spoken_text"] for c in truth_of(clip)["captions"])
            wer = word_error_rate(spoken, " ".join(w.word for w in outcome.words))
            total["media"] += media_s
            total["stage"] += stage_s
            total["bare"] += bare_s
            rows.append(
                [
                    kind.value,
                    clip.stem,
                    f"{media_s:.1f}",
                    f"{stage_s:.2f}",
                    f"{bare_s:.2f}",
                    f"{stage_s / bare_s:.3f}",
                    f"{stage_s / media_s:.3f}",
                    f"{wer:.3f}",
                ]
            )
        if speech_clips:
            rows.append(
                [
                    kind.value,
                    "ALL",
                    f"{total['media']:.1f}",
                    f"{total['stage']:.2f}",
                    f"{total['bare']:.2f}",
                    f"{total['stage'] / total['bare']:.3f}",
                    f"{total['stage'] / total['media']:.3f}",
                    "",
                ]
            )
    notes.append(
        f"settings: cpu_threads={settings.cpu_threads}, beam {settings.beam_size}, pool_size={settings.pool_size}, "
        f"pieces of ~{settings.chunk_target_s:g} s; goal stage/bare <= 1.10"
    )
    if len(speech_clips) > 1:
        notes.append(_asr_long_media(speech_clips))
    return StageReport("ASR", columns, rows, notes, _peak_rss_mb())


def _asr_long_media(clips: list[Path]) -> str:
    """Whisper on all clips' audio back to back, cut into ~60 s pieces: one worker process vs two."""
    import tempfile
    from fractions import Fraction

    import av
    import numpy as np

    from captionqc.asr.settings import AsrSettings
    from captionqc.asr.stage import transcribe
    from captionqc.media.audio import SAMPLE_RATE, decode_audio

    audio = np.concatenate([decode_audio(c) for c in clips])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="mono")
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, 0, Fraction(1, SAMPLE_RATE)
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                out.mux(packet)
        timings = {}
        for workers in (1, 2):
            settings = AsrSettings(pool_size=workers, chunk_target_s=60.0, chunk_slack_s=15.0)
            t0 = time.perf_counter()
            transcribe(path, settings=settings)
            timings[workers] = time.perf_counter() - t0
    return (
        f"long media ({audio.size / SAMPLE_RATE:.0f} s, ~60 s pieces, worker start-up included): "
        f"pool_size=1 {timings[1]:.2f} s, pool_size=2 {timings[2]:.2f} s ({timings[1] / timings[2]:.2f}x)"
    )


# ---------------------------------------------------------------------------------------------------- runner

BENCHES: dict[str, Callable[[list[Path]], StageReport]] = {"ocr": bench_ocr, "asr": bench_asr}


def print_report(report: StageReport) -> None:
    print(f"\n== {report.stage} stage (peak RSS of its process: {report.peak_rss_mb:.0f} MB)")
    if report.rows:
        widths = [max(len(c), *(len(r[i]) for r in report.rows)) for i, c in enumerate(report.columns)]
        print("  ".join(c.rjust(w) for c, w in zip(report.columns, widths, strict=True)))
        for row in report.rows:
            print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    for note in report.notes:
        print(f"  - {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("clips", nargs="*", type=Path, help="clips with a .truth.json beside them (default: samples/)")
    parser.add_argument("--only", choices=sorted(BENCHES), action="append", help="run only this stage (repeatable)")
    args = parser.parse_args(argv)
    clips = args.clips or sample_clips()
    if not clips:
        print("no sample clips with ground truth under samples/", file=sys.stderr)
        return 1
    print(f"{len(clips)} clips: {', '.join(c.stem for c in clips)}")
    # One fresh process per stage, one after the other: peak RSS is the stage's own, and the stages do not compete
    # for the CPU (on a shared machine the figures are noisy anyway: compare ratios within one run).
    context = multiprocessing.get_context("spawn")
    for name in args.only or list(BENCHES):
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            print_report(pool.submit(BENCHES[name], clips).result())
    return 0


if __name__ == "__main__":
    sys.exit(main())
