"""Readable, prefixed logs from the services' JSON lines."""

from __future__ import annotations

import collections
import json
import sys
import threading
from typing import IO

_COLORS = {"gateway": 36, "status": 35, "ocr": 33, "asr": 32, "crosscheck": 34}
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_SHOWN_FIELDS = (
    "job_id",
    "event_type",
    "subscription",
    "reason",
    "method",
    "route",
    "status",
    "duration_ms",
    "outcome",
)


class LogPrinter:
    """Prints one line per log record as ``service | LEVEL message key=value``.

    ``min_level`` hides chatter (the demo shows warnings only, so its progress bar stays readable); every line
    is also kept in a bounded buffer so a failure can show what led to it.
    """

    def __init__(self, *, min_level: str = "INFO", out: IO[str] | None = None, color: bool | None = None) -> None:
        self.min_level = _LEVELS.get(min_level.upper(), 20)
        self.out = out or sys.stdout
        self.color = self.out.isatty() if color is None else color
        self.recent: collections.deque[str] = collections.deque(maxlen=400)
        self._lock = threading.Lock()

    def format(self, service: str, raw: str) -> tuple[int, str]:
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict):
                raise ValueError
        except ValueError:
            return 20, f"{self._prefix(service)} {raw.rstrip()}"
        severity = str(entry.get("severity", "INFO"))
        extras = " ".join(f"{k}={entry[k]}" for k in _SHOWN_FIELDS if k in entry)
        line = f"{self._prefix(service)} {severity:<7} {entry.get('message', '')}"
        if extras:
            line += f"  {self._dim(extras)}"
        if "stack_trace" in entry:
            line += "\n" + str(entry["stack_trace"]).rstrip()
        return _LEVELS.get(severity, 20), line

    def pump(self, service: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            level, line = self.format(service, raw.decode("utf-8", errors="replace"))
            with self._lock:
                self.recent.append(line)
                if level >= self.min_level:
                    print(line, file=self.out, flush=True)

    def _prefix(self, service: str) -> str:
        label = f"{service:>10} |"
        if not self.color:
            return label
        return f"\033[{_COLORS.get(service, 37)}m{label}\033[0m"

    def _dim(self, text: str) -> str:
        return f"\033[2m{text}\033[0m" if self.color else text
