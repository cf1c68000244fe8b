"""Terminal rendering: progress bars fed by the status stream, and the findings table."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from captionqc.schemas import TypoFinding
from captionqc.schemas.status_api import JobState, JobView, StreamEventName


def timecode(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes):02d}:{secs:04.1f}"


class JobProgress:
    """Four bars (overall, OCR, ASR, cross-check) updated from `JobView`s."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[state]:<10}"),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[message]}"),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> JobProgress:
        self.progress.__enter__()
        for name in ("job", "ocr", "asr", "crosscheck"):
            self.tasks[name] = self.progress.add_task(name, total=1.0, state="pending", message="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def update(self, view: JobView) -> None:
        self.progress.update(self.tasks["job"], completed=view.progress, state=view.state.value, message="")
        for name in ("ocr", "asr", "crosscheck"):
            stage = getattr(view.stages, name)
            self.progress.update(
                self.tasks[name], completed=stage.progress, state=stage.state.value, message=stage.message[:60]
            )


def watch_stream(console: Console, events: Iterable[tuple[StreamEventName, JobView]]) -> JobView | None:
    last: JobView | None = None
    with JobProgress(console) as bars:
        for _name, view in events:
            bars.update(view)
            last = view
            if view.state in (JobState.COMPLETED, JobState.FAILED):
                break
    return last


def findings_table(findings: list[TypoFinding], *, title: str = "Findings") -> Table:
    table = Table(title=title, show_lines=False, header_style="bold")
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("caption", overflow="fold", max_width=44)
    table.add_column("word", style="bold red")
    table.add_column("suggestion", style="green")
    table.add_column("kind")
    table.add_column("conf.", justify="right")
    table.add_column("severity")
    for f in sorted(findings, key=lambda f: (f.start_s, f.word)):
        table.add_row(
            timecode(f.start_s),
            f.caption_text,
            f.word,
            f.suggestion or "",
            f.kind.value,
            f"{f.confidence:.2f}",
            f.severity.value,
        )
    return table
