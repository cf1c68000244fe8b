"""Start a real emulator subprocess for tests and the local stack.

with start_emulator() as emulator:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    ...
    assert emulator.subscription_state(path)["backlog"] == 0
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

READY_PREFIX = "pubsub-emulator listening "
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
# The src folder that holds the `captionqc` namespace portion of this package: handed to the child through
# PYTHONPATH so the subprocess imports the very code the caller imported, installed or not.
_SRC_DIR = Path(__file__).resolve().parents[2]


class EmulatorError(RuntimeError):
    """The emulator did not start, or stopped unexpectedly."""


class EmulatorProcess:
    """A running `python -m captionqc.pubsub_emulator`, restartable on the same ports and data dir."""

    def __init__(self, data_dir: Path | None, host: str, port: int) -> None:
        self.data_dir = data_dir
        self._bind_host = host
        self._port = port
        self._admin_port = 0
        self.host = ""
        self.admin_url = ""
        self._process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        self.last_returncode: int | None = None  # exit status of the last stopped process

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._process is not None:
            raise EmulatorError("already running")
        command = [
            sys.executable,
            "-m",
            "captionqc.pubsub_emulator",
            "--host",
            self._bind_host,
            "--port",
            str(self._port),
            "--admin-port",
            str(self._admin_port),
        ]
        if self.data_dir is not None:
            command += ["--data-dir", str(self.data_dir)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SRC_DIR), env.get("PYTHONPATH", "")) if p)
        # The emulator must not itself be pointed at an emulator, nor inherit asyncio debug from a test run.
        env.pop("PUBSUB_EMULATOR_HOST", None)
        env.pop("PYTHONASYNCIODEBUG", None)
        # stderr goes to a file, not a pipe: nobody drains it while tests run, and a full pipe would block the
        # emulator's logging (and so the emulator).
        # One file across restarts, so stderr_text() tells the whole story.
        if self._stderr is None:
            self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        # Its own session: a Ctrl-C in the terminal reaches only the launcher, which then stops the emulator last,
        # after the services that still talk to it have drained.
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
        line = self._wait_ready(self._process)
        grpc_part, admin_part = line[len(READY_PREFIX) :].split()
        self.host = grpc_part.removeprefix("grpc=")
        self.admin_url = admin_part.removeprefix("admin=")
        # Remember the ports so a restart comes back where clients already point.
        self._port = int(self.host.rsplit(":", 1)[1])
        self._admin_port = int(self.admin_url.rsplit(":", 1)[1])

    def _wait_ready(self, process: subprocess.Popen[str]) -> str:
        assert process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = process.stdout

        def read() -> None:
            for raw in stdout:
                lines.put(raw)
            lines.put("")

        threading.Thread(target=read, name="pubsub-emulator-stdout", daemon=True).start()
        give_up = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < give_up:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line.startswith(READY_PREFIX):
                return line.strip()
            if line == "":
                process.wait(timeout=STOP_TIMEOUT_S)
                break
        self._kill()
        raise EmulatorError(f"the Pub/Sub emulator did not become ready: {self.stderr_text()[-4000:]}")

    def stderr_text(self) -> str:
        """Everything the emulator logged so far."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        text = self._stderr.read()
        self._stderr.seek(0, os.SEEK_END)
        return text

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` and wait for the process to exit (killing it after a timeout)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._kill()
        self._process = None
        self.last_returncode = process.returncode
        if process.stdout is not None:
            process.stdout.close()

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=STOP_TIMEOUT_S)

    def restart(self) -> None:
        """Stop gracefully and start again on the same ports with the same data dir."""
        self.stop()
        self.start()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def close(self) -> None:
        self.stop()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    # -------------------------------------------------------------------------------------------- admin

    def _get(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.admin_url + path, method=method)  # noqa: S310 - our own http URL
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def state(self, project: str | None = None) -> dict[str, Any]:
        """Topics and subscriptions with backlog, outstanding leases and counters (see README)."""
        query = f"?project={urllib.parse.quote(project)}" if project else ""
        result: dict[str, Any] = self._get(f"/v1/state{query}")
        return result

    def subscription_state(self, subscription_path: str) -> dict[str, Any]:
        """The state of one subscription (`projects/P/subscriptions/S`); KeyError if it does not exist."""
        project = subscription_path.split("/")[1]
        for subscription in self.state(project)["subscriptions"]:
            if subscription["name"] == subscription_path:
                return dict(subscription)
        raise KeyError(subscription_path)

    def close_streams(self, subscription_path: str | None = None) -> int:
        """End open StreamingPull calls with UNAVAILABLE (clients reopen them); returns how many."""
        query = f"?subscription={urllib.parse.quote(subscription_path)}" if subscription_path else ""
        return int(self._get(f"/v1/close-streams{query}", method="POST")["closed"])


@contextmanager
def start_emulator(
    data_dir: Path | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[EmulatorProcess]:
    """Run an emulator subprocess for the duration of the block; it is stopped (SIGTERM) on exit."""
    emulator = EmulatorProcess(data_dir, host, port)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.close()


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> None:
    """Poll `predicate` until it is truthy; raise AssertionError after `timeout` seconds."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
