"""Read-model records → API models, and the CSV and WebVTT renderings of a job's findings."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

from captionqc.schemas import CaptionSegment, CheckKind, Stage, TypoFinding
from captionqc.schemas.reasons import Refusal
from captionqc.schemas.status_api import (
    CallbackState,
    CallbackView,
    JobFailure,
    JobFindings,
    JobStages,
    JobState,
    JobView,
    StageView,
    TimelineEvent,
)
from captionqc.status.projection import JobRecord, StageRecord, TimelineRow

# How much each stage counts towards a job's overall progress: OCR and ASR run in parallel and take the time.
_WEIGHTS = {Stage.OCR: 0.45, Stage.ASR: 0.45, Stage.CROSSCHECK: 0.10}
# Spreadsheet apps run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "finding_id", "start_s", "end_s", "kind", "severity", "confidence", "word", "suggestion", "caption_text",
)  # fmt: skip


def _stage_view(record: StageRecord) -> StageView:
    return StageView(
        state=record.state,
        progress=min(max(record.progress, 0.0), 1.0),
        message=record.message,
        first_seen_at=record.first_seen_at,
        completed_at=record.completed_at,
        seconds=record.seconds,
        processing_s=record.processing_s,
    )


_REFUSALS = frozenset(r.value for r in Refusal)


def callback_view(job: JobRecord) -> CallbackView | None:
    """The webhook's state: pending until the job finishes and its delivery row says otherwise."""
    if not job.callback_url:
        return None
    delivery = job.delivery
    if delivery is None:
        return CallbackView(state=CallbackState.PENDING)
    try:
        state = CallbackState(delivery.state)
    except ValueError:
        state = CallbackState.PENDING
    error = delivery.last_error if state is not CallbackState.DELIVERED else None
    # The sender writes a refusal as "<rule>: <message>", the rule being a refusal code.
    code = error.split(":", 1)[0] if error and state is CallbackState.REFUSED else None
    return CallbackView(
        state=state,
        attempts=delivery.attempts,
        last_status=delivery.last_status,
        reason=code if code in _REFUSALS else None,
        message=error,
    )


def job_view(job: JobRecord) -> JobView:
    progress = 1.0 if job.state is JobState.COMPLETED else sum(job.stages[s].progress * w for s, w in _WEIGHTS.items())
    failure = None
    if job.state is JobState.FAILED and job.failure_reason is not None:
        failure = JobFailure(reason=job.failure_reason, message=job.failure_message or "", stage=job.failure_stage)
    return JobView(
        job_id=job.job_id,
        tenant=job.tenant,
        state=job.state,
        progress=round(min(max(progress, 0.0), 1.0), 4),
        stages=JobStages(
            ocr=_stage_view(job.stages[Stage.OCR]),
            asr=_stage_view(job.stages[Stage.ASR]),
            crosscheck=_stage_view(job.stages[Stage.CROSSCHECK]),
        ),
        media_uri=job.media_uri,
        language=job.language,
        failure=failure,
        callback=callback_view(job),
        finding_counts={CheckKind(k): v for k, v in job.finding_counts.items() if k in _KINDS},
        findings_total=job.findings_total,
        captions=job.captions_state,
        trace_id=job.trace_id,
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.completed_at,
    )


_KINDS = frozenset(k.value for k in CheckKind)


def findings_view(job: JobRecord, findings: Sequence[TypoFinding]) -> JobFindings:
    view = job_view(job)
    return JobFindings(job_id=job.job_id, state=job.state, findings=list(findings), finding_counts=view.finding_counts)


def timeline_event(row: TimelineRow) -> TimelineEvent:
    return TimelineEvent(
        event_id=row.event_id,
        type=row.type,
        time=row.time,
        received_at=row.received_at,
        source=row.source,
        stage=row.stage,
        summary=row.summary,
    )


# -- CSV -----------------------------------------------------------------------------------------------------------
def _cell(text: str | None) -> str:
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def findings_csv(findings: Sequence[TypoFinding]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for f in findings:
        writer.writerow(
            [
                f.id,
                f"{f.start_s:.3f}",
                f"{f.end_s:.3f}",
                f.kind.value,
                f.severity.value,
                f"{f.confidence:.3f}",
                _cell(f.word),
                _cell(f.suggestion),
                _cell(f.caption_text),
            ]
        )
    return out.getvalue()


# -- WebVTT --------------------------------------------------------------------------------------------------------
def _timestamp(seconds: float) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _note_text(text: str) -> str:
    # A NOTE block ends at a blank line and must not contain "-->".
    return " ".join(text.split()).replace("-->", "->")


def _overlaps(finding: TypoFinding, start: float, end: float, slack: float = 0.25) -> bool:
    return finding.start_s < end + slack and finding.end_s > start - slack


def _mark(text: str, flagged: Sequence[TypoFinding]) -> tuple[str, set[str]]:
    """``text`` escaped, every whole-word occurrence of a flagged word wrapped in ``<c.typo.KIND>``."""
    spans: list[tuple[int, int, TypoFinding]] = []
    for finding in flagged:
        if not finding.word.strip():
            continue
        pattern = re.compile(rf"(?<!\w){re.escape(finding.word)}(?!\w)")
        spans.extend((m.start(), m.end(), finding) for m in pattern.finditer(text))
    spans.sort(key=lambda s: (s[0], -s[1]))
    out: list[str] = []
    placed: set[str] = set()
    pos = 0
    for start, end, finding in spans:
        if start < pos:
            continue  # overlaps a word already marked
        out.append(_escape(text[pos:start]))
        out.append(f"<c.typo.{finding.kind.value}>{_escape(text[start:end])}</c>")
        placed.add(finding.id)
        pos = end
    out.append(_escape(text[pos:]))
    return "".join(out), placed


def findings_vtt(
    job: JobRecord, findings: Sequence[TypoFinding], segments: Sequence[CaptionSegment], *, captions_available: bool
) -> str:
    """The OCR'd captions as WebVTT cues, flagged words marked; findings that fit no cue are listed in NOTEs."""
    lines = ["WEBVTT", ""]
    lines += [
        _note_text(
            f"NOTE captionqc job {job.job_id}: {len(findings)} findings. Flagged words are marked "
            "<c.typo.KIND>word</c> (KIND: misspelling, wrong_word, number_mismatch, caption_not_spoken)."
        ),
        "",
    ]
    cues: list[tuple[float, float, str]]
    if captions_available:
        cues = [(s.start_s, s.end_s, s.text) for s in segments]
    else:
        note = job.captions_note or "the OCR'd captions are not available"
        lines += [_note_text(f"NOTE {note}; cues are the captions that have findings."), ""]
        seen: dict[tuple[float, float, str], None] = {}
        for f in findings:
            if f.caption_text:
                seen.setdefault((f.start_s, f.end_s, f.caption_text), None)
        cues = sorted(seen)
    placed: set[str] = set()
    for index, (start, end, text) in enumerate(cues, start=1):
        flagged = [f for f in findings if _overlaps(f, start, end)]
        marked, here = _mark(text, flagged)
        placed |= here
        lines += [str(index), f"{_timestamp(start)} --> {_timestamp(max(end, start + 0.001))}"]
        lines += [line if line.strip() else "\u00a0" for line in marked.splitlines()] or ["\u00a0"]
        lines.append("")
    for f in findings:
        if f.id not in placed:
            suggestion = f" (suggestion: {f.suggestion})" if f.suggestion else ""
            lines += [
                _note_text(f"NOTE {f.kind.value} at {_timestamp(f.start_s)}: {f.word!r}{suggestion}"),
                "",
            ]
    return "\n".join(lines)
