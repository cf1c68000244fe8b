"""The local stack's ports: free, distinct, and out of the kernel's reach between the check and the service's bind."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from captionqc.devstack.logview import LogPrinter
from captionqc.devstack.stack import (
    Ports,
    Service,
    Stack,
    StackPaths,
    ephemeral_range,
    free_port,
    free_ports,
    pick_ports,
    port_free,
)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another process is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def outside_ephemeral(port: int) -> bool:
    low, high = ephemeral_range()
    return not low <= port <= high


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    for _ in range(20):
        ports = list(vars(free_ports()).values())
        assert len(set(ports)) == len(ports)
        assert all(outside_ephemeral(port) and port_free(port) for port in ports), ports


def test_a_busy_usual_port_is_replaced_and_a_free_one_kept(held_port: int) -> None:
    usual = free_ports()
    preferred = Ports(**{**vars(usual), "crosscheck": held_port})
    chosen = pick_ports(preferred, fixed=False)
    assert chosen.crosscheck != held_port
    assert outside_ephemeral(chosen.crosscheck)
    assert chosen.crosscheck not in {*vars(usual).values()}
    assert {**vars(chosen), "crosscheck": held_port} == vars(preferred)
    assert pick_ports(preferred, fixed=True) == preferred


def test_two_parts_never_share_a_port() -> None:
    port = free_ports().gateway
    chosen = pick_ports(Ports(**dict.fromkeys(vars(Ports()), port)), fixed=False)
    assert len(set(vars(chosen).values())) == len(vars(chosen))


def test_ephemeral_range_is_read_from_the_kernel_file(tmp_path: Path) -> None:
    table = tmp_path / "ip_local_port_range"
    table.write_text("40000\t50000\n")
    assert ephemeral_range(table) == (40000, 50000)
    assert ephemeral_range(tmp_path / "missing") == (32768, 60999)


@pytest.mark.parametrize("held", [True, False])
def test_a_service_that_dies_at_start_says_when_its_port_is_taken(tmp_path: Path, held_port: int, held: bool) -> None:
    port = held_port if held else free_port()
    stack = Stack(StackPaths(tmp_path), free_ports(), LogPrinter(), "secret", tmp_path / "spans.jsonl")
    service = Service("crosscheck", [sys.executable, "-c", "raise SystemExit(3)"], port, {})
    service.process = subprocess.Popen(service.argv)
    service.process.wait(timeout=30)
    stack.services["crosscheck"] = service
    with pytest.raises(RuntimeError) as failure:
        stack.wait_healthy(timeout_s=5)
    assert str(failure.value).startswith("crosscheck exited with code 3 while starting")
    assert (f"port {port} is held by another process" in str(failure.value)) is held
