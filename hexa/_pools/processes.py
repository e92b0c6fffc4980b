"""`hexa worker --processes P`: P worker processes on one machine, so every core is used.

One process runs Python on one core at a time; an asyncio-pool worker keeps its one loop busy
with thousands of coroutines, so a machine with several cores runs several of them. Each child
is a complete `hexa worker` (its own consumer, prefetch, event loop, node name `<name>-<i>@<host>`
and metrics port PORT + i); this parent only starts them, passes shutdown signals on, restarts
a child that dies, and exits when all are done. Periodic tasks (`--beat`) run in the first only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from hexa._logging import get_logger
from hexa._reload import SUPERVISOR_ENV

log = get_logger()

#: A child that fails within this many seconds of starting is a start-up error, not a crash.
STARTUP_SECONDS = 5.0
#: Signal received -> signal passed on (Ctrl-C reaches the children already; TERM is idempotent).
_FORWARD = {
    signal.SIGTERM: signal.SIGTERM,
    signal.SIGINT: signal.SIGTERM,
    signal.SIGQUIT: signal.SIGQUIT,
}


def node_name(hostname: str | None, index: int) -> str:
    """`w@%h` -> `w-2@%h` for child 2; Celery's default name is `celery`."""
    name, at, host = (hostname or "celery@%h").partition("@")
    if not at:
        name, host = "celery", name
    return f"{name}-{index}@{host}"


def _is_beat_flag(token: str) -> bool:
    return token == "-B" or (token.startswith("--b") and "--beat".startswith(token))


def child_argv(
    argv: Sequence[str], index: int, hostname: str | None, metrics_port: int | None = None
) -> list[str]:
    """The parent's arguments for child `index`: one process, its node name, beat in 0 only,
    metrics on `metrics_port + index`."""
    kept = [t for t in argv if index == 0 or not _is_beat_flag(t)]
    # argparse keeps the last value given: these override the parent's.
    own = ["--processes=1", f"--hostname={node_name(hostname, index)}"]
    if metrics_port is not None:
        own.append(f"--metrics-port={metrics_port + index}")
    return [*kept, *own]


class Supervisor:
    """Starts the children, forwards TERM/INT/QUIT to them, restarts one that crashed."""

    def __init__(
        self, argv: Sequence[str], count: int, hostname: str | None, metrics_port: int | None
    ) -> None:
        self.argvs = [child_argv(argv, i, hostname, metrics_port) for i in range(count)]
        self.children: list[subprocess.Popen[bytes] | None] = [None] * count
        self.started = [0.0] * count
        self.stopping = False
        self.exit_code = 0

    def start(self, index: int) -> None:
        command = [sys.executable, "-m", "hexa", *self.argvs[index]]
        # The child follows this process (`follow_supervisor`): if it is killed outright,
        # with no chance to pass a signal on, its workers stop instead of running on.
        env = {**os.environ, SUPERVISOR_ENV: str(os.getpid())}
        child = self.children[index] = subprocess.Popen(command, env=env)
        self.started[index] = time.monotonic()
        log.info("worker.process_started", index=index, pid=child.pid)

    def forward(self, signum: int, frame: FrameType | None = None) -> None:
        self.stopping = True
        for child in self.children:
            if child is not None and child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(_FORWARD.get(signal.Signals(signum), signum))

    def run(self) -> int:
        for signum in _FORWARD:
            signal.signal(signum, self.forward)
        for index in range(len(self.children)):
            self.start(index)
        while any(child is not None for child in self.children):
            time.sleep(0.2)
            for index, child in enumerate(self.children):
                if child is not None and child.poll() is not None:
                    self._ended(index, child.returncode)
        return self.exit_code

    def _ended(self, index: int, code: int) -> None:
        self.children[index] = None
        early = time.monotonic() - self.started[index] < STARTUP_SECONDS
        if self.stopping or code == 0 or early:
            self.exit_code = self.exit_code or code
            if early and code and not self.stopping:  # a start-up error: the others fail alike
                log.error("worker.process_failed", index=index, exit_code=code)
                self.forward(signal.SIGTERM)
            return
        log.warning("worker.process_restarted", index=index, exit_code=code)
        self.start(index)


def run_processes(
    argv: Sequence[str], count: int, hostname: str | None, metrics_port: int | None = None
) -> int:
    """Run `count` copies of this `hexa worker` command; returns the first failure's code."""
    return Supervisor(argv, count, hostname, metrics_port).run()
