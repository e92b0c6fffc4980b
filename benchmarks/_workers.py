"""Real worker processes (`hexa worker` or `celery worker`), each in its own process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from benchmarks._system import group_cpu_seconds


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Worker:
    """One worker: `kind` is "hexa" or a Celery app module (`rawapp`, `rawbig`)."""

    def __init__(
        self,
        kind: str,
        root: Path,
        queue: str,
        env: Mapping[str, str],
        logs: Path,
        pool: str = "prefork",
        concurrency: int = 2,
    ) -> None:
        self.kind, self.queue = kind, queue
        common = [f"--queues={queue}", f"--pool={pool}", f"--concurrency={concurrency}"]
        common += [f"--hostname={unique('bench')}@%h", "--loglevel=INFO"]
        if kind == "hexa":
            argv = [sys.executable, "-m", "hexa", "worker", *common]
        else:
            argv = [sys.executable, "-m", "celery", "-A", kind, "worker", *common]
            argv += ["--without-mingle", "--without-gossip"]
        full_env = {
            **os.environ,
            **env,
            "HEXA_DEFAULT_QUEUE": queue,
            "HEXA_LOG_FORMAT": "json",
            "PYTHONPATH": str(root),
        }
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"{unique(kind)}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            cwd=root,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def cpu(self) -> float:
        """CPU seconds of the main process and its pool children so far."""
        return group_cpu_seconds(self.proc.pid)

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Warm shutdown of the whole group, then a kill for anything left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._log.close()
