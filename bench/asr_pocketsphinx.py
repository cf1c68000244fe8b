"""pocketsphinx's two adaptations to other voices, side by side, over several noise floors (never fails).

.venv/bin/python bench/asr_pocketsphinx.py [--seeds N] [--jobs N] [--dir FOLDER]

Three engines, each on every clip: CMUdict alone; with misaki's British pronunciations added; and with those plus
speaker adaptation (an MLLR transform from a first pass, then a second pass). pocketsphinx gets a seeded -50 dBFS
noise floor (see ``PocketsphinxEngine``), and on these clips the words it hears move with that floor: one seed's
WER says little about one clip. So every clip is transcribed with ``--seeds`` different floors (the engine's own
seed first), and the table gives each clip's mean and range. Decode times are compared in the same run, on the
same machine load.

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


# label → (British pronunciations, speaker adaptation)
VARIANTS = {"CMUdict": (False, False), "+ British": (True, False), "+ British + MLLR": (True, True)}


@dataclass(frozen=True)
class Run:
    clip: str
    variant: str
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


def _transcribe(media: str, spoken: str, variant: str, seed: int) -> Run:
    from captionqc.asr.engines import PocketsphinxEngine
    from captionqc.asr.wer import word_error_rate
    from captionqc.media.audio import decode_audio

    british, adapted = VARIANTS[variant]
    engine = PocketsphinxEngine(british_pronunciations=british, speaker_adaptation=adapted, noise_seed=seed)
    audio = decode_audio(Path(media))
    started = time.perf_counter()
    words = engine.transcribe(audio, language="en-GB")
    seconds = time.perf_counter() - started
    return Run(Path(media).stem, variant, seed, word_error_rate(spoken, " ".join(w.word for w in words)), seconds)


def _span(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="noise floors per clip (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--dir", type=Path, default=REPO / "samples", help="clips with <stem>.truth.json")
    args = parser.parse_args()
    from captionqc.media.audio import has_audio

    clips = [(media, spoken) for media, spoken in clips_in(args.dir) if has_audio(media)]
    if not clips:
        print(f"no clips with ground truth and audio in {args.dir}", file=sys.stderr)
        return 2
    seeds = [ENGINE_SEED, *range(1, args.seeds)]
    tasks = [(str(m), s, variant, seed) for m, s in clips for seed in seeds for variant in VARIANTS]
    runs: list[Run] = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(_transcribe, *task) for task in tasks]
        for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            runs.append(future.result())
            print(f"\r{done}/{len(tasks)} decodes", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    print(f"pocketsphinx WER, {len(seeds)} noise floors per clip (engine seed {ENGINE_SEED}, then 1..): mean (range)")
    print(f"{'clip':<24}" + "".join(f" {label:>20}" for label in VARIANTS) + "   at the engine seed")
    for media, _ in clips:
        mine = [r for r in runs if r.clip == media.stem]
        spans = "".join(f" {_span([r.wer for r in mine if r.variant == label]):>20}" for label in VARIANTS)
        at_seed = {r.variant: r.wer for r in mine if r.seed == ENGINE_SEED}
        own = " → ".join(f"{at_seed[label]:.3f}" for label in VARIANTS)
        print(f"{media.stem:<24}{spans}   {own}")
    plain_s = sum(r.seconds for r in runs if r.variant == "CMUdict")
    for label in VARIANTS:
        chosen = [r for r in runs if r.variant == label]
        seconds = sum(r.seconds for r in chosen)
        print(
            f"{label:<17} mean WER {statistics.mean(r.wer for r in chosen):.3f}, "
            f"worst {max(r.wer for r in chosen):.3f}, "
            f"runs over 0.6: {sum(r.wer > 0.6 for r in chosen)}/{len(chosen)}, "
            f"decode time {seconds / plain_s:.2f}x CMUdict's ({seconds:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
