"""`hexa worker --reload`: restart the worker whenever Python code changes (development).

A supervisor process watches the code with watchfiles and runs the real worker as a child,
`python -m hexa worker ...` with the same arguments, in a process group of its own so a
restart also stops the worker's pool processes. The supervisor never imports `modules`: a
module that fails to import stops the child only, and the next save starts it again.

A supervisor that dies without stopping its child (SIGKILL, a crash) must not leave the
worker running on: the child asks Linux for a SIGTERM when its parent dies
(`PR_SET_PDEATHSIG`), and on every platform a thread notices the parent is gone (it is
re-parented) and stops the worker the way the supervisor would have.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType

import attrs
import watchfiles

from hexa._logging import get_logger

log = get_logger()

#: Set in the child's environment so its own `--reload` means "run the worker".
CHILD_ENV = "HEXA_RELOAD_CHILD"
#: The supervisor's pid, in the child's environment: the child stops when that process is gone.
SUPERVISOR_ENV = "HEXA_RELOAD_SUPERVISOR"
#: Seconds between the child's checks that its supervisor is still its parent.
PARENT_CHECK_INTERVAL = 1.0
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
#: Seconds a worker gets for its warm shutdown before the group is killed.
STOP_TIMEOUT = 10.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def is_reload_child() -> bool:
    """True inside the worker a supervisor started (which must not supervise again)."""
    return os.environ.get(CHILD_ENV) == "1"


def watched_paths(cwd: Path) -> list[Path]:
    """`modules/`, hexa's own package, and every other package in the project's root."""
    packages = [
        path
        for path in sorted(cwd.iterdir())
        if path.is_dir() and not path.name.startswith(".") and (path / "__init__.py").is_file()
    ]
    candidates = [cwd / "modules", Path(__file__).resolve().parent, *packages]
    unique = dict.fromkeys(path.resolve() for path in candidates if path.is_dir())
    return list(unique)


def _relative(path: str, cwd: Path) -> str:
    try:
        return str(Path(path).relative_to(cwd))
    except ValueError:
        return path


@attrs.define
class WorkerChild:
    """The current `hexa worker` child process, in its own process group."""

    command: Sequence[str]
    cwd: Path
    proc: subprocess.Popen[bytes] | None = None
    exit_logged: bool = False

    def start(self) -> None:
        # No .pyc writes: a second save within the same second would otherwise load the
        # first save's bytecode (pyc files are validated by mtime in whole seconds).
        env = {
            **os.environ,
            CHILD_ENV: "1",
            SUPERVISOR_ENV: str(os.getpid()),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.proc = subprocess.Popen(list(self.command), cwd=self.cwd, env=env, process_group=0)
        self.exit_logged = False
        log.info("worker.started", pid=self.proc.pid)

    def check(self) -> None:
        """Log once when the worker exited by itself (e.g. a module failed to import)."""
        if self.proc is not None and self.proc.poll() is not None and not self.exit_logged:
            self.exit_logged = True
            log.warning(
                "worker.exited",
                pid=self.proc.pid,
                code=self.proc.returncode,
                hint="fix the code and save: the worker restarts on the next change",
            )

    def stop(self) -> None:
        """Warm shutdown (SIGTERM to the worker, which stops its pool), then SIGKILL the group."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("worker.killed", pid=self.proc.pid, after=STOP_TIMEOUT)
        self._signal(signal.SIGKILL)  # the group's stragglers, if any
        self.proc.wait()
        self.proc = None

    def _signal(self, signum: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(self.proc.pid, signum)


def follow_supervisor() -> None:
    """In a supervisor's worker: stop when the supervisor dies, however it died.

    Linux sends SIGTERM (Celery's warm shutdown) the moment the parent dies; everywhere a
    daemon thread polls the parent pid, which changes when the process is re-parented.
    """
    supervisor = int(os.environ.get(SUPERVISOR_ENV) or 0)
    if not supervisor:
        return
    set_parent_death_signal(signal.SIGTERM)
    threading.Thread(
        target=stop_when_orphaned, args=(supervisor,), name="hexa-reload-parent", daemon=True
    ).start()


def set_parent_death_signal(signum: int) -> bool:
    """Ask Linux to send `signum` to this process when its parent dies (False elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def stop_when_orphaned(supervisor: int, interval: float = PARENT_CHECK_INTERVAL) -> None:
    """Wait until `supervisor` is no longer the parent, then stop as the supervisor would.

    SIGTERM first (a warm shutdown lets running tasks finish), then SIGKILL to the worker's
    process group (its pool) after `STOP_TIMEOUT`.
    """
    while os.getppid() == supervisor:
        time.sleep(interval)
    log.warning(
        "worker.orphaned", supervisor=supervisor, hint="its --reload or --processes parent died"
    )
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(STOP_TIMEOUT)
    if os.getpgrp() == os.getpid():  # the group the supervisor made: this worker and its pool
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in _STOP_SIGNALS:
        signal.signal(signum, handler)


def _changed(changes: Iterable[tuple[watchfiles.Change, str]], cwd: Path) -> list[str]:
    return sorted({_relative(path, cwd) for _, path in changes})


def run_with_reload(argv: Sequence[str], cwd: Path | None = None) -> int:
    """Run `python -m hexa <argv>` and restart it whenever a watched `.py` file changes."""
    cwd = cwd or Path.cwd()
    paths = watched_paths(cwd)
    stop = threading.Event()
    _stop_on_signals(stop)
    child = WorkerChild([sys.executable, "-m", "hexa", *argv], cwd)
    log.info("worker.watching", paths=[_relative(str(p), cwd) for p in paths])
    child.start()
    try:
        for changes in watchfiles.watch(
            *paths,
            watch_filter=watchfiles.PythonFilter(),
            stop_event=stop,
            rust_timeout=500,
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            child.check()
            if changes:
                log.info("worker.reload", changed=_changed(changes, cwd))
                child.stop()
                child.start()
    finally:
        child.stop()
    return 0
