"""The CSV and WebVTT renderings (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from captionqc.schemas import CaptionSegment, CheckKind, Severity, TypoFinding
from captionqc.status.projection import new_job
from captionqc.status.views import findings_vtt


def finding(id_: str, word: str, start: float, kind: CheckKind = CheckKind.MISSPELLING) -> TypoFinding:
    return TypoFinding(
        id=id_,
        start_s=start,
        end_s=start + 1,
        caption_text="",
        word=word,
        suggestion=None,
        kind=kind,
        confidence=0.9,
        severity=Severity.ERROR,
    )


def test_vtt_marks_whole_words_and_notes_findings_without_a_cue() -> None:
    now = datetime.now(UTC)
    job = new_job("00000000-0000-4000-8000-000000000000", "acme", event_time=now, received_at=now, trace_id=None)
    segments = [CaptionSegment(start_s=3661.5, end_s=3663.0, text="an ant --> at the anthem", confidence=0.9)]
    found = [finding("a", "ant", 3662.0), finding("b", "anything", 10.0, CheckKind.SPEECH_NOT_CAPTIONED)]
    text = findings_vtt(job, found, segments, captions_available=True)
    assert "01:01:01.500 --> 01:01:03.000\nan <c.typo.misspelling>ant</c> --&gt; at the anthem\n" in text
    assert "NOTE speech_not_captioned at 00:00:10.000: 'anything'" in text
    assert text.count("-->") == 1  # only the cue timing line
