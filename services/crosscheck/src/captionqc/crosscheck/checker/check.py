"""check_captions: caption segments + timed words → findings and a summary. Pure: no I/O."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from captionqc.crosscheck.checker.align import CaptionSpan, align, equivalent, estimate_offset
from captionqc.crosscheck.checker.config import CheckerConfig
from captionqc.crosscheck.checker.normalize import Token, tokenise_caption, tokenise_speech
from captionqc.crosscheck.checker.scoring import Candidate, Vocabulary, score_alignment
from captionqc.crosscheck.checker.segmentation import SegmentationVocabulary, split_glued
from captionqc.schemas.events import (
    CaptionSegment,
    CheckKind,
    FindingsSummary,
    JobOptions,
    Severity,
    TimedWord,
    TypoFinding,
)


@dataclass(frozen=True, slots=True)
class CheckResult:
    findings: list[TypoFinding]
    summary: FindingsSummary


def _term_keys(terms: Sequence[str]) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = []
    for term in terms:
        toks = tokenise_caption(term, caption=0, start_s=0.0, end_s=0.0, confidence=1.0)
        if toks:
            keys.append(tuple(t.key for t in toks))
    return keys


def _merge_repeats(segments: Sequence[CaptionSegment]) -> list[CaptionSegment]:
    """OCR may read one caption as two back-to-back segments (a flicker, a misread frame): keep one of them."""
    out: list[CaptionSegment] = []
    for seg in sorted(segments, key=lambda s: (s.start_s, s.end_s)):
        if not seg.text.strip():
            continue
        if out:
            prev = out[-1]
            same = "".join(prev.text.lower().split()) == "".join(seg.text.lower().split())
            if same and seg.start_s - prev.end_s <= 0.5:
                out[-1] = prev.model_copy(
                    update={"end_s": max(prev.end_s, seg.end_s), "confidence": max(prev.confidence, seg.confidence)}
                )
                continue
        out.append(seg)
    return out


def _finding_id(c: Candidate) -> str:
    # Content-only (no job id, no run time) so a recomputation yields the same ids.
    basis = f"{c.kind.value}|{round(c.start_s * 1000)}|{c.caption}|{c.position}|{c.word.lower()}"
    return hashlib.sha256(basis.encode()).hexdigest()[:24]


def _ng_candidates(tokens: Sequence[Token], ng: Sequence[tuple[str, ...]]) -> dict[tuple[int, int], Candidate]:
    hits: dict[tuple[int, int], Candidate] = {}
    for i in range(len(tokens)):
        for term in ng:
            span = tokens[i : i + len(term)]
            if (
                len(span) == len(term)
                and all(t.caption == span[0].caption for t in span)
                and all(equivalent(t.key, k) for t, k in zip(span, term, strict=True))
            ):
                first = span[0]
                hits[(first.caption, first.position)] = Candidate(
                    CheckKind.WRONG_WORD, first.caption, first.position, first.start_s, first.end_s,
                    " ".join(t.raw for t in span), None, 1.0, {"ng_word": True},
                )  # fmt: skip
                break
    return hits


def check_captions(
    segments: Sequence[CaptionSegment],
    words: Sequence[TimedWord],
    options: JobOptions,
    config: CheckerConfig,
) -> CheckResult:
    """Cross-check what the captions show against what was said."""
    captions = _merge_repeats(segments)
    spoken = sorted(tokenise_speech(words), key=lambda t: (t.mid_s, t.position))
    glossary_keys = _term_keys(options.glossary)
    ng_keys = _term_keys(options.ng_words)
    glossary = frozenset(k for term in glossary_keys for k in term)
    vocab = Vocabulary(
        glossary=glossary,
        ng_words=frozenset(k for term in ng_keys for k in term),
        glossary_terms=tuple(" ".join(t) for t in glossary_keys if len(t) == 1),
    )

    spans = [
        CaptionSpan(
            seg.start_s,
            seg.end_s,
            "".join(t.key for t in tokenise_caption(seg.text, caption=i, start_s=0, end_s=0, confidence=1)),
        )
        for i, seg in enumerate(captions)
    ]
    offset = estimate_offset(spans, spoken, config.max_offset_s, config.offset_step_s)

    mids = [t.mid_s for t in spoken]
    extra = glossary | vocab.ng_words
    caption_tokens: list[Token] = []
    for i, seg in enumerate(captions):
        lo = bisect.bisect_left(mids, seg.start_s + offset - config.window_padding_s)
        hi = bisect.bisect_right(mids, seg.end_s + offset + config.window_padding_s)
        # A number's words ("4.5 million") are spoken words too: a typo in the scale word is a near miss of them.
        heard = {t.key for t in spoken[lo:hi]}
        heard.update(w.lower() for t in spoken[lo:hi] if t.is_number for w in t.raw.split() if w.isalpha())
        seg_vocab = SegmentationVocabulary(frozenset(heard), extra)
        caption_tokens.extend(
            tokenise_caption(
                seg.text,
                caption=i,
                start_s=seg.start_s,
                end_s=seg.end_s,
                confidence=seg.confidence,
                split=lambda chunk, v=seg_vocab: split_glued(chunk, v),  # type: ignore[misc]
            )
        )

    pairs = align(caption_tokens, spans, spoken, offset, config.window_padding_s)
    candidates = score_alignment(
        pairs, caption_tokens, vocab, config, {i: (s.start_s, s.end_s) for i, s in enumerate(captions)}
    )
    # NG words are flagged whatever the speech says, and replace any other finding on the same word.
    ng_hits = _ng_candidates(caption_tokens, ng_keys)
    candidates = [c for c in candidates if (c.caption, c.position) not in ng_hits or c.caption < 0]
    candidates.extend(ng_hits.values())

    wanted = set(options.checks)
    findings: list[TypoFinding] = []
    seen: set[str] = set()
    for cand in sorted(candidates, key=lambda c: (c.start_s, c.caption, c.position, c.kind.value)):
        if cand.kind not in wanted or cand.confidence < config.min_confidence:
            continue
        fid = _finding_id(cand)
        if fid in seen:
            continue
        seen.add(fid)
        caption_text = captions[cand.caption].text if cand.caption >= 0 else _caption_text_at(captions, cand)
        findings.append(
            TypoFinding(
                id=fid,
                start_s=max(0.0, cand.start_s),
                end_s=max(0.0, cand.end_s, cand.start_s),
                caption_text=caption_text[:2000],
                word=cand.word[:256],
                suggestion=cand.suggestion[:256] if cand.suggestion else None,
                kind=cand.kind,
                confidence=cand.confidence,
                severity=Severity.ERROR if cand.confidence >= config.error_threshold else Severity.WARNING,
                evidence=cand.evidence,
            )
        )

    counts = dict.fromkeys(options.checks, 0)
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    confirmed = sum(len(p.caption) for p in pairs if p.matched)
    summary = FindingsSummary(
        counts=counts,
        offset_s=offset,
        caption_words=len(caption_tokens),
        spoken_words=len(spoken),
        confirmed_share=round(confirmed / len(caption_tokens), 4) if caption_tokens else 0.0,
    )
    return CheckResult(findings=findings, summary=summary)


def _caption_text_at(captions: Sequence[CaptionSegment], cand: Candidate) -> str:
    mid = (cand.start_s + cand.end_s) / 2.0
    for seg in captions:
        if seg.start_s <= mid <= seg.end_s:
            return seg.text
    return ""
