"""Sync-to-async bridge: one persistent event loop per process, shared by every async task.

`asyncio.run()` per task (the seed's wrapper) closes the loop after each call, which breaks
async clients reused across tasks and lets no two coroutines overlap. Here the loop runs on a
daemon thread for the life of the process (anyio's blocking portal); every pool thread that
calls `run_sync` waits on its own coroutine, so a threads pool of N keeps N in flight.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import anyio
import structlog
from anyio.from_thread import BlockingPortal, start_blocking_portal

from hexa._exceptions import TaskTimeoutError

R = TypeVar("R")


async def _call(
    func: Callable[..., Awaitable[R]],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    timeout: float | None,
    log_context: Mapping[str, Any],
) -> R:
    # Each portal call is its own asyncio task with its own context copy: binding here
    # gives the task body the caller's task id without leaking into other tasks.
    structlog.contextvars.bind_contextvars(**log_context)
    if timeout is None:
        return await func(*args, **kwargs)
    try:
        with anyio.fail_after(timeout):
            return await func(*args, **kwargs)
    except TimeoutError:
        raise TaskTimeoutError(f"cancelled after exceeding timeout={timeout}s") from None


class EventLoopBridge:
    """From sync threads to the process's event loop (started on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._context: AbstractContextManager[BlockingPortal] | None = None
        self._pid = 0

    def portal(self) -> BlockingPortal:
        """This process's portal; a forked child gets its own loop, never its parent's."""
        if self._portal is None or self._pid != os.getpid():
            with self._lock:
                if self._portal is None or self._pid != os.getpid():
                    self._context = start_blocking_portal(backend="asyncio")
                    self._portal = self._context.__enter__()
                    self._pid = os.getpid()
        return self._portal

    def run_sync(
        self,
        func: Callable[..., Awaitable[R]],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> R:
        """Run `await func(*args, **kwargs)` on the loop and wait for it in this thread."""
        log_context = structlog.contextvars.get_contextvars()
        result: R = self.portal().call(_call, func, args, kwargs or {}, timeout, log_context)
        return result

    @property
    def running(self) -> bool:
        return self._portal is not None and self._pid == os.getpid()

    def stop(self) -> None:
        """Stop the loop cleanly (worker shutdown, interpreter exit); safe to call twice."""
        with self._lock:
            if self._context is not None and self._pid == os.getpid():
                self._context.__exit__(None, None, None)
            self._portal = self._context = None


#: The process's bridge.
bridge = EventLoopBridge()
atexit.register(bridge.stop)
