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


def worker_argv(kind: str, queue: str, pool: str, concurrency: int, defaults: bool) -> list[str]:
    """`hexa worker` or `celery -A kind worker`; `defaults`: only what the run needs.

    Without `defaults` the raw Celery twin gets hexa's worker flags (no mingle, no gossip,
    INFO logs), so the layer rows compare the layer alone.
    """
    common = [f"--queues={queue}", f"--pool={pool}", f"--concurrency={concurrency}"]
    common += [f"--hostname={unique('bench')}@%h"]
    if kind == "hexa":
        return [sys.executable, "-m", "hexa", "worker", *common]
    argv = [sys.executable, "-m", "celery", "-A", kind, "worker", *common]
    if not defaults:
        argv += ["--without-mingle", "--without-gossip", "--loglevel=INFO"]
    return argv


class Worker:
    """One worker process group: hexa, a Celery app module (`rawapp`, `rawbig`), or a peer's.

    `argv` starts anything else (Dramatiq, taskiq); by default `kind` says which Celery worker.
    """

    def __init__(
        self,
        kind: str,
        root: Path,
        queue: str,
        env: Mapping[str, str],
        logs: Path,
        pool: str = "prefork",
        concurrency: int = 2,
        argv: list[str] | None = None,
        defaults: bool = False,
    ) -> None:
        self.kind, self.queue = kind, queue
        argv = argv or worker_argv(kind, queue, pool, concurrency, defaults)
        full_env = {
            **os.environ,
            **env,
            "HEXA_DEFAULT_QUEUE": queue,
            "BENCH_QUEUE": queue,
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
