"""pocketsphinx with and without British pronunciations, side by side, over several noise floors (never fails).

.venv/bin/python bench/asr_pronunciations.py [--seeds N] [--jobs N] [--dir FOLDER]

pocketsphinx gets a seeded -50 dBFS noise floor (see ``PocketsphinxEngine``), and on these clips the words it
hears move with that floor: one seed's WER says little about one clip. So every clip is transcribed with
``--seeds`` different floors (the engine's own seed first), once with CMUdict alone and once with misaki's
British pronunciations added, and the table gives each clip's mean and range. The decode-time ratio (British /
plain) is measured in the same run, on the same machine load.

Default folder: the committed samples. A generated folder (``tools/make_sample_clip``) works the same way.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINE_SEED = 20240601


@dataclass(frozen=True)
class Run:
    clip: str
    british: bool
    seed: int
    wer: float
    seconds: float


def clips_in(folder: Path) -> list[tuple[Path, str]]:
    clips = []
    for truth_file in sorted(folder.glob("*.truth.json")):
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
        media = truth_file.with_name(truth_file.name.removesuffix(".truth.json") + ".mp4")
        spoken = " ".join(caption["spoken_text"] for caption in truth.get("captions", []))
        if spoken and media.is_file() and truth.get("kind", "") != "error":
            clips.append((media, spoken))
    return clips


def _transcribe(media: str, spoken: str, british: bool, seed: int) -> Run:
    from captionqc.asr.engines import PocketsphinxEngine
    from captionqc.asr.wer import word_error_rate
    from captionqc.media.audio import decode_audio

    engine = PocketsphinxEngine(british_pronunciations=british, noise_seed=seed)
    audio = decode_audio(Path(media))
    started = time.perf_counter()
    words = engine.transcribe(audio, language="en-GB")
    seconds = time.perf_counter() - started
    return Run(Path(media).stem, british, seed, word_error_rate(spoken, " ".join(w.word for w in words)), seconds)


def _span(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="noise floors per clip (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--dir", type=Path, default=REPO / "samples", help="clips with <stem>.truth.json")
    args = parser.parse_args()
    clips = [(media, spoken) for media, spoken in clips_in(args.dir) if _has_audio(media)]
    if not clips:
        print(f"no clips with ground truth and audio in {args.dir}", file=sys.stderr)
        return 2
    seeds = [ENGINE_SEED, *range(1, args.seeds)]
    tasks = [(str(m), s, british, seed) for m, s in clips for seed in seeds for british in (False, True)]
    runs: list[Run] = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(_transcribe, *task) for task in tasks]
        for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            runs.append(future.result())
            print(f"\r{done}/{len(tasks)} decodes", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    print(f"pocketsphinx WER, {len(seeds)} noise floors per clip (engine seed {ENGINE_SEED}, then 1..)")
    print(f"{'clip':<24} {'CMUdict':>22} {'+ British':>22} {'engine seed':>18}")
    for media, _ in clips:
        plain = [r for r in runs if r.clip == media.stem and not r.british]
        with_british = [r for r in runs if r.clip == media.stem and r.british]
        own = {r.british: r.wer for r in plain + with_british if r.seed == ENGINE_SEED}
        print(
            f"{media.stem:<24} {_span([r.wer for r in plain]):>22} {_span([r.wer for r in with_british]):>22}"
            f" {own[False]:>8.3f} → {own[True]:.3f}"
        )
    for label, british in (("CMUdict", False), ("+ British", True)):
        chosen = [r for r in runs if r.british is british]
        per_clip_max = [max(r.wer for r in chosen if r.clip == m.stem) for m, _ in clips]
        over = sum(r.wer > 0.6 for r in chosen)
        print(
            f"{label:<10} mean WER {statistics.mean(r.wer for r in chosen):.3f}, worst clip/seed "
            f"{max(per_clip_max):.3f}, runs over 0.6: {over}/{len(chosen)}"
        )
    plain_s = sum(r.seconds for r in runs if not r.british)
    british_s = sum(r.seconds for r in runs if r.british)
    print(f"decode time, British / plain: {british_s / plain_s:.2f}x ({british_s:.0f} s vs {plain_s:.0f} s)")
    return 0


def _has_audio(media: Path) -> bool:
    from captionqc.media.audio import probe_audio
    from captionqc.media.errors import NoAudioStream

    try:
        probe_audio(media)
    except NoAudioStream:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
