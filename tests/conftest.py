"""Cross-service tests: the whole system as processes on 127.0.0.1, driven through its public API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from captionqc.devstack.logview import LogPrinter
from captionqc.devstack.stack import Stack, free_ports, running_stack

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "samples"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running system for the e2e tests, on free ports, with its state in a throwaway folder."""
    var = tmp_path_factory.mktemp("stack-var")
    ports = free_ports()
    printer = LogPrinter(min_level="WARNING")
    with running_stack(var=var, ports=ports, fixed_ports=True, printer=printer) as running:
        yield running


def truth(clip: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / clip).with_suffix(".truth.json").read_text())
    return data
