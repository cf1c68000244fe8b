"""Detection quality of the caption checker against labelled clips, beside a dictionary-only baseline.

    .venv/bin/python bench/detection_eval.py                      # committed samples, ground-truth text
    .venv/bin/python bench/detection_eval.py --input engines      # real OCR (RapidOCR) + ASR (Whisper tiny.en)
    .venv/bin/python bench/detection_eval.py --dir samples/generated --input engines
    # a fresh labelled set (git-ignored):
    .venv/bin/python tools/make_sample_clip/make_sample_clip.py --batch samples/generated --count 12 --seed 7

Inputs: ``truth`` feeds each caption's ``displayed_text`` as an OCR segment and its ``spoken_text`` as timed words
spread over the caption (perfect OCR and ASR: an upper bound; ``--drop-spaces P`` removes each space with
probability P, as RapidOCR does). ``engines`` runs the OCR and ASR stages on the media, cached per file hash in
``.cache/eval/``.

A finding counts as a hit when its time overlaps the typo's caption (±0.5 s) and its word is the typo's displayed
word (case and punctuation aside; containment allowed, since glued OCR text may yield a longer word, and a
similarity of 0.75 for words of 4+ letters, since OCR may misread the typo word itself). The baseline
spell-checks the same OCR text with wordfreq alone — the dictionary segments glued words, no speech is used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein

from captionqc.crosscheck.checker import CheckerConfig, check_captions, warm_up
from captionqc.crosscheck.checker.lexicon import zipf
from captionqc.crosscheck.checker.normalize import tokenise_caption
from captionqc.crosscheck.checker.segmentation import SegmentationVocabulary, split_glued
from captionqc.schemas.events import CaptionSegment, JobOptions, TimedWord

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "eval"
_NON_WORD = re.compile(r"[^a-z0-9']+")
_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class TruthTypo:
    clip: str
    caption: int
    start_s: float
    end_s: float
    displayed: str
    spoken: str
    kind: str
    typo_type: str


@dataclass(frozen=True)
class Flag:
    """A finding reduced to what matching needs (checker and baseline alike)."""

    clip: str
    start_s: float
    end_s: float
    word: str
    kind: str


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    fp_clean: int = 0
    by_truth_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> [found, total]
    by_typo_type: dict[str, list[int]] = field(default_factory=dict)
    by_finding_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> [tp, fp]

    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def f1(self) -> float:
        p, r = self.precision(), self.recall()
        return 2 * p * r / (p + r) if p + r else 0.0


def _norm(word: str) -> str:
    return _NON_WORD.sub("", word.lower().replace("’", "'"))


def _same_word(found: str, displayed: str) -> bool:
    a, b = _norm(found), _norm(displayed)
    if not a or not b:
        return False
    if a == b or (len(a) >= 2 and len(b) >= 2 and (a in b or b in a)):
        return True
    # OCR may misread the typo word itself ("lnogest" read as "Inogest"): the finding still points at it.
    return len(a) >= 4 and Levenshtein.normalized_similarity(a, b) >= 0.75


def load_truth(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def truth_inputs(
    truth: dict[str, Any], drop_spaces: float, rng: random.Random
) -> tuple[list[CaptionSegment], list[TimedWord]]:
    segments: list[CaptionSegment] = []
    words: list[TimedWord] = []
    for cap in truth["captions"]:
        text = cap["displayed_text"]
        if drop_spaces > 0:
            text = "".join(ch for ch in text if ch != " " or rng.random() >= drop_spaces)
        segments.append(CaptionSegment(start_s=cap["start_s"], end_s=cap["end_s"], text=text, confidence=1.0))
        spoken = cap["spoken_text"].split()
        total = sum(len(w) + 1 for w in spoken)
        t = float(cap["start_s"])
        span = float(cap["end_s"]) - t
        for w in spoken:
            d = span * (len(w) + 1) / total
            words.append(TimedWord(start_s=t, end_s=t + d, word=" " + w, confidence=1.0))
            t += d
    return segments, words


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


def engine_inputs(media: Path) -> tuple[list[CaptionSegment], list[TimedWord], dict[str, float]]:
    """Run (or reuse cached) OCR and ASR on the media file."""
    CACHE.mkdir(parents=True, exist_ok=True)
    digest = _file_hash(media)
    timings: dict[str, float] = {}
    ocr_file = CACHE / f"{digest}.ocr.json"
    if not ocr_file.exists():
        from captionqc.ocr.stage import read_captions

        t0 = time.perf_counter()
        outcome = read_captions(media)
        timings["ocr_s"] = time.perf_counter() - t0
        ocr_file.write_text(json.dumps([s.model_dump(mode="json") for s in outcome.segments]))
    asr_file = CACHE / f"{digest}.asr.json"
    if not asr_file.exists():
        from captionqc.asr.stage import transcribe
        from captionqc.media.errors import NoAudioStream

        t0 = time.perf_counter()
        try:
            heard = transcribe(media, language="en-US").words
        except NoAudioStream:
            # The pipeline would fail such a job; here it shows what the checker does with captions alone.
            heard = []
        timings["asr_s"] = time.perf_counter() - t0
        asr_file.write_text(json.dumps([w.model_dump(mode="json") for w in heard]))
    segments = [CaptionSegment.model_validate_json(json.dumps(s)) for s in json.loads(ocr_file.read_text())]
    words = [TimedWord.model_validate_json(json.dumps(w)) for w in json.loads(asr_file.read_text())]
    return segments, words, timings


def baseline_flags(clip: str, segments: list[CaptionSegment], config: CheckerConfig) -> list[Flag]:
    """Spell-check alone: every caption word the dictionary does not know is flagged."""
    vocab = SegmentationVocabulary(frozenset())
    flags: list[Flag] = []
    for i, seg in enumerate(segments):
        for tok in tokenise_caption(
            seg.text,
            caption=i,
            start_s=seg.start_s,
            end_s=seg.end_s,
            confidence=seg.confidence,
            split=lambda chunk: split_glued(chunk, vocab),
        ):
            if not tok.is_number and zipf(tok.key) < config.real_word_zipf:
                flags.append(Flag(clip, seg.start_s, seg.end_s, tok.raw, "misspelling"))
    return flags


def score(flags: list[Flag], typos: list[TruthTypo], clean: dict[str, list[tuple[float, float]]], tally: Tally) -> None:
    open_typos = list(typos)
    for flag in flags:
        hit = next(
            (
                t
                for t in open_typos
                if t.clip == flag.clip
                and flag.start_s <= t.end_s + _TOLERANCE_S
                and flag.end_s >= t.start_s - _TOLERANCE_S
                and _same_word(flag.word, t.displayed)
            ),
            None,
        )
        per_kind = tally.by_finding_kind.setdefault(flag.kind, [0, 0])
        if hit is not None:
            open_typos.remove(hit)
            tally.tp += 1
            per_kind[0] += 1
        else:
            tally.fp += 1
            per_kind[1] += 1
            mid = (flag.start_s + flag.end_s) / 2
            if any(s <= mid <= e for s, e in clean.get(flag.clip, [])):
                tally.fp_clean += 1
    tally.fn += len(open_typos)
    for t in typos:
        found = t not in open_typos
        for table, key in ((tally.by_truth_kind, t.kind), (tally.by_typo_type, t.typo_type)):
            row = table.setdefault(key, [0, 0])
            row[0] += int(found)
            row[1] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", action="append", type=Path, help="folder of *.truth.json (+ media); repeatable")
    parser.add_argument("--input", choices=["truth", "engines"], default="truth")
    parser.add_argument("--drop-spaces", type=float, default=0.0, help="truth input: drop each space with prob P")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", "-v", action="store_true", help="list misses and false findings")
    args = parser.parse_args(argv)

    folders = args.dir or [ROOT / "samples"]
    truth_files = sorted(p for d in folders for p in d.glob("*.truth.json"))
    if not truth_files:
        print("no *.truth.json found in", ", ".join(map(str, folders)), file=sys.stderr)
        return 2
    config = CheckerConfig()
    options = JobOptions()
    rng = random.Random(args.seed)
    warm_up()

    checker, baseline = Tally(), Tally()
    clean_minutes = 0.0
    total_minutes = 0.0
    check_seconds: list[float] = []
    offsets: list[str] = []
    misses: list[str] = []
    for path in truth_files:
        truth = load_truth(path)
        clip = str(truth["clip"])
        captions = truth["captions"]
        typos = [
            TruthTypo(
                clip, c["index"], c["start_s"], c["end_s"], t["displayed"], t["spoken"], t["kind"], t["typo_type"]
            )
            for c in captions
            for t in c["typos"]
        ]
        clean = {clip: [(c["start_s"], c["end_s"]) for c in captions if not c["typos"]]}
        clean_minutes += sum(e - s for s, e in clean[clip]) / 60.0
        total_minutes += float(truth["duration_s"]) / 60.0
        if args.input == "engines":
            media = path.with_name(clip)
            segments, words, timings = engine_inputs(media)
            if timings:
                print(f"  {clip}: ran engines {timings}", file=sys.stderr)
        else:
            segments, words = truth_inputs(truth, args.drop_spaces, rng)

        t0 = time.perf_counter()
        result = check_captions(segments, words, options, config)
        check_seconds.append(time.perf_counter() - t0)
        offsets.append(f"{clip}:{result.summary.offset_s:+.2f}s")
        flags = [Flag(clip, f.start_s, f.end_s, f.word, f.kind.value) for f in result.findings]
        before_fp = checker.fp
        score(flags, typos, clean, checker)
        score(baseline_flags(clip, segments, config), typos, clean, baseline)
        if args.verbose:
            found_words = {_norm(f.word) for f in result.findings}
            for t in typos:
                if not any(_same_word(w, t.displayed) for w in found_words):
                    misses.append(f"  MISS {clip} [{t.kind}/{t.typo_type}] {t.displayed!r} (said {t.spoken!r})")
            if checker.fp > before_fp:
                for f in result.findings:
                    if not any(_same_word(f.word, t.displayed) for t in typos):
                        mid = (f.start_s + f.end_s) / 2
                        where = " (clean caption)" if any(s <= mid <= e for s, e in clean[clip]) else ""
                        misses.append(
                            f"  FALSE{where} {clip} {f.start_s:.1f}s {f.kind.value} {f.word!r}→{f.suggestion!r} "
                            f"conf={f.confidence} {f.evidence}"
                        )

    print(f"clips: {len(truth_files)}  input: {args.input}"
          + (f" (drop spaces {args.drop_spaces})" if args.drop_spaces else "")
          + f"  typos: {checker.tp + checker.fn}  clean caption minutes: {clean_minutes:.2f}")  # fmt: skip
    print(f"offsets: {' '.join(offsets)}")
    print(f"check_captions: max {max(check_seconds) * 1000:.0f} ms per clip\n")
    print(f"{'':24}{'precision':>10}{'recall':>8}{'F1':>7}{'TP':>5}{'FP':>5}{'FN':>5}{'FP/min clean':>14}")
    for name, tally in (("checker", checker), ("dictionary baseline", baseline)):
        fpm = tally.fp_clean / clean_minutes if clean_minutes else 0.0
        print(
            f"{name:24}{tally.precision():>10.3f}{tally.recall():>8.3f}{tally.f1():>7.3f}"
            f"{tally.tp:>5}{tally.fp:>5}{tally.fn:>5}{fpm:>14.2f}"
        )
    print(f"\nF1 gain over baseline: {checker.f1() - baseline.f1():+.3f}")
    print("\nrecall per ground-truth kind        checker   baseline")
    for kind in sorted(checker.by_truth_kind):
        c, b = checker.by_truth_kind[kind], baseline.by_truth_kind[kind]
        print(f"  {kind:32} {c[0]:>3}/{c[1]:<3}     {b[0]:>3}/{b[1]:<3}")
    print("recall per typo type")
    for kind in sorted(checker.by_typo_type):
        c, b = checker.by_typo_type[kind], baseline.by_typo_type[kind]
        print(f"  {kind:32} {c[0]:>3}/{c[1]:<3}     {b[0]:>3}/{b[1]:<3}")
    print("checker findings per kind (hit / false)")
    for kind in sorted(checker.by_finding_kind):
        tp, fp = checker.by_finding_kind[kind]
        print(f"  {kind:32} {tp:>3} / {fp:<3}")
    print(f"(all findings: {(checker.fp) / total_minutes:.2f} false per minute of media)")
    if misses:
        print("\n" + "\n".join(misses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
