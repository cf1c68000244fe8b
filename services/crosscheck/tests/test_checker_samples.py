"""Regression: the checker on the committed samples' ground truth (perfect OCR and ASR text).

Each caption's ``displayed_text`` is fed as an OCR segment and its ``spoken_text`` as timed words spread over the
caption's time; findings are matched to the labelled typos by caption time and word. The floors sit below what the
checker measures (recall 1.0, precision 1.0 on the committed clips, also with 30% of OCR spaces dropped) with margin.
The full OCR → ASR path is measured by bench/detection_eval.py, not here.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from captionqc.crosscheck.checker import CheckerConfig, check_captions
from captionqc.schemas.events import CaptionSegment, JobOptions, TimedWord

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
TRUTH_FILES = sorted(SAMPLES.glob("*.truth.json"))
_NON_WORD = re.compile(r"[^a-z0-9']+")


def _norm(word: str) -> str:
    return _NON_WORD.sub("", word.lower())


def _inputs(truth: dict[str, Any], drop_spaces: float) -> tuple[list[CaptionSegment], list[TimedWord]]:
    rng = random.Random(7)
    segments, words = [], []
    for cap in truth["captions"]:
        text = "".join(ch for ch in cap["displayed_text"] if ch != " " or rng.random() >= drop_spaces)
        segments.append(CaptionSegment(start_s=cap["start_s"], end_s=cap["end_s"], text=text, confidence=1.0))
        said = cap["spoken_text"].split()
        step = (cap["end_s"] - cap["start_s"]) / len(said)
        words += [
            TimedWord(
                start_s=cap["start_s"] + i * step, end_s=cap["start_s"] + (i + 1) * step, word=" " + w, confidence=1.0
            )
            for i, w in enumerate(said)
        ]
    return segments, words


def _score(drop_spaces: float) -> tuple[int, int, int]:
    tp = fp = fn = 0
    for path in TRUTH_FILES:
        truth = json.loads(path.read_text())
        segments, words = _inputs(truth, drop_spaces)
        findings = check_captions(segments, words, JobOptions(), CheckerConfig()).findings
        typos = [(c["start_s"], c["end_s"], _norm(t["displayed"])) for c in truth["captions"] for t in c["typos"]]
        for f in findings:
            word = _norm(f.word)
            hit = next(
                (
                    t
                    for t in typos
                    if f.start_s <= t[1] + 0.5 and f.end_s >= t[0] - 0.5 and (word == t[2] or t[2] in word)
                ),
                None,
            )
            if hit is None:
                fp += 1
            else:
                typos.remove(hit)
                tp += 1
        fn += len(typos)
    return tp, fp, fn


@pytest.mark.skipif(not TRUTH_FILES, reason="no committed samples yet")
@pytest.mark.parametrize("drop_spaces", [0.0, 0.3])
def test_ground_truth_recall_and_precision_floors(drop_spaces: float) -> None:
    tp, fp, fn = _score(drop_spaces)
    assert tp + fn >= 10, "the committed samples should carry a fair number of typos"
    recall, precision = tp / (tp + fn), tp / (tp + fp) if tp + fp else 1.0
    assert recall >= 0.9, (tp, fp, fn)
    assert precision >= 0.9, (tp, fp, fn)
