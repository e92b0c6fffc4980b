"""Real `hexa worker` processes for integration tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """A `python -m hexa worker` subprocess in its own process group, with its log lines."""

    def __init__(
        self,
        cwd: Path,
        env: Mapping[str, str],
        args: Sequence[str] = (),
        command: str = "worker",
        prefix: Sequence[str] = (),
    ) -> None:
        """`prefix`: what runs the command (`ip netns exec <host>` for another host)."""
        self.cwd = cwd
        self.lines: list[str] = []  # stdout and stderr, each line whole
        self.stderr_lines: list[str] = []  # stderr alone: JSON lines only, in JSON mode
        full_env = {**os.environ, "HEXA_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1", **env}
        for key in ("RABBITMQ_URL", "REDIS_URL"):
            if full_env.get(key) == "":
                del full_env[key]
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "hexa", command, *args],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: stop() reaches the pool children
        )
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, []), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr_lines)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    def _read(self, stream: Any, also: list[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))
            also.append(line.rstrip("\n"))

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log events so far, optionally only those named `name`."""
        found = []
        for line in list(self.lines):
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if name is None or event.get("event") == name:
                found.append(event)
        return found

    def wait_for(
        self, name: str, count: int = 1, timeout: float = 30.0, **fields: Any
    ) -> list[dict[str, Any]]:
        """At least `count` events `name` (with these `fields`, when given): all there are."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events(name) if all(e.get(k) == v for k, v in fields.items())]
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited ({self.proc.returncode}):\n{self.output()}")
            time.sleep(0.05)
        wanted = f"{name!r} {fields}" if fields else repr(name)
        raise AssertionError(f"no {count}x {wanted} within {timeout}s:\n{self.output()}")

    def wait_ready(self, timeout: float = 30.0) -> WorkerProcess:
        self.wait_for("worker.ready", timeout=timeout)
        return self

    def output(self) -> str:
        return "\n".join(self.lines[-200:])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the main process and its pool children)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait(5)
        self.kill(signal.SIGKILL)  # stragglers of the group, if any
        for reader in self._readers:
            reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
