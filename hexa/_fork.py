"""Connections are per process: a forked child forgets the ones it inherited.

gunicorn `--preload`, `multiprocessing` and plain `os.fork()` copy the parent's open broker
and result-store connections into every child. Parent and children then write frames to the
same sockets and read each other's replies: every process's publish fails after its timeouts
(`UnexpectedFrame`, `PublishError`). Celery resets its pools only in processes that billiard
starts; here every hexa app drops its connection pool, producer pool and result backend in
any forked child (`os.register_at_fork`), so the child opens its own on first use. The
inherited objects are dropped, never closed: closing them would close the parent's.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

_apps: weakref.WeakSet[Any] = weakref.WeakSet()


def forget_connections_after_fork(app: Any) -> None:
    """Make a forked child of this process open its own connections for `app`."""
    _apps.add(app)


def _forget(app: Any) -> None:
    app._after_fork()  # Celery's own reset: connection pool and producer pool
    app._local = threading.local()  # result backend and reply-to id, made again on first use


def _in_child() -> None:
    for app in list(_apps):
        _forget(app)


os.register_at_fork(after_in_child=_in_child)
