"""Time limits a worker's pool can enforce, checked when the worker starts.

Celery stops a sync task at its soft limit (an exception in the task) and its hard limit (the
process is killed) only in pools with processes to signal or kill: prefork, the default. The
threads, solo and asyncio pools run a sync task in the worker's own process (the asyncio pool
in a thread of its own), where neither can land: `timeout=` would be silently ignored. hexa
refuses to start such a worker instead, naming the tasks and the ways out. Async tasks keep
their `timeout=` on any pool: the event loop cancels them.
"""

from __future__ import annotations

import inspect
from typing import Any

from hexa._exceptions import ConfigurationError

#: Pools that cannot interrupt a running sync task (the asyncio pool runs them in threads).
POOLS_WITHOUT_TIME_LIMITS = ("threads", "solo", "asyncio")


def _limited(task: Any) -> bool:
    """Whether `task` relies on Celery's time limits (an async task's `timeout=` does not)."""
    is_async = inspect.iscoroutinefunction(inspect.unwrap(getattr(task, "run", None) or task))
    if is_async and getattr(task, "hexa_timeout", None) is not None:
        return False
    return bool(getattr(task, "time_limit", None) or getattr(task, "soft_time_limit", None))


def unenforced(app: Any, pool: str | None) -> list[str]:
    """Names of the tasks whose time limits `pool` would not enforce."""
    chosen = (pool or str(app.conf.worker_pool or "prefork")).lower()
    if chosen not in POOLS_WITHOUT_TIME_LIMITS:
        return []
    return sorted(name for name, task in app.tasks.items() if _limited(task))


def check_time_limits(app: Any, pool: str | None) -> None:
    """Raise `ConfigurationError` when `pool` cannot enforce a task's `timeout=`."""
    names = unenforced(app, pool)
    if names:
        raise ConfigurationError(
            f"--pool {pool} cannot stop a running sync task, so the time limits of "
            f"{', '.join(names)} would never apply. Run them on the default prefork pool "
            "(e.g. their own queue and a second worker: hexa worker --queues NAME), make them "
            "async (the event loop cancels them at timeout=), or remove their timeout="
        )
