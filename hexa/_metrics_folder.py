"""A worker's private `PROMETHEUS_MULTIPROC_DIR`: made fresh, removed at exit, strays swept.

prometheus_client's multiprocess mode keeps each process's values in files of one folder,
which must start empty and belong to one worker. Kept apart from the metrics themselves:
the folder must exist before prometheus_client is first imported.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "hexa-metrics-"


def private_folder() -> Path:
    """A fresh folder for this worker's metric files; stale ones of dead workers go first."""
    base = os.environ.get(MULTIPROC_ENV) or None
    _remove_stale(Path(base or tempfile.gettempdir()))
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base))
    os.environ[MULTIPROC_ENV] = str(path)
    atexit.register(_remove, path, os.getpid())
    return path


def _remove(path: Path, owner: int) -> None:
    if os.getpid() == owner:  # a forked child inherits this hook; only the worker removes
        shutil.rmtree(path, ignore_errors=True)


def _remove_stale(root: Path) -> None:
    for folder in root.glob(f"{_PREFIX}*-*"):
        pid = folder.name[len(_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (someone else's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
