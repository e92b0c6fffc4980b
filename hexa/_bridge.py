"""Sync-to-async bridge: one persistent event loop per process, shared by every async task.

`asyncio.run()` per task (the seed's wrapper) closes the loop after each call, which breaks
async clients reused across tasks and lets no two coroutines overlap. Here the loop runs on a
daemon thread for the life of the process (anyio's blocking portal); every pool thread that
calls `run_sync` waits on its own coroutine, so a threads pool of N keeps N in flight.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
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
    # move_on_after, not fail_after: a TimeoutError raised by the body itself (a client's
    # own timeout) must reach the caller as it is, not as hexa's timeout.
    with anyio.move_on_after(timeout):
        return await func(*args, **kwargs)
    raise TaskTimeoutError(
        f"{getattr(func, '__qualname__', func)} was cancelled after running past its "
        f"timeout={timeout}s; raise timeout= where the task is declared if it needs longer"
    )


class EventLoopBridge:
    """From sync threads to the process's event loop (started on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._context: AbstractContextManager[BlockingPortal] | None = None
        self._pid = 0
        self._loop_thread = 0
        _bridges.add(self)

    def portal(self) -> BlockingPortal:
        """This process's portal; a forked child gets its own loop, never its parent's."""
        if self._portal is None or self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._abandon_parent_loop()
                if self._portal is None:
                    self._start()
        assert self._portal is not None
        return self._portal

    def _start(self) -> None:
        self._context = start_blocking_portal(backend="asyncio")
        self._portal = self._context.__enter__()
        self._pid = os.getpid()
        self._loop_thread = self._portal.call(threading.get_ident)

    def run_sync(
        self,
        func: Callable[..., Awaitable[R]],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> R:
        """Run `await func(*args, **kwargs)` on the loop and wait for it in this thread."""
        portal = self.portal()
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError(
                f"cannot wait for {getattr(func, '__qualname__', func)} on hexa's event loop "
                "from that loop's own thread (it would wait on itself); in async code, "
                "`await` the task instead: `await task(...)`"
            )
        log_context = structlog.contextvars.get_contextvars()
        result: R = portal.call(_call, func, args, kwargs or {}, timeout, log_context)
        return result

    @property
    def running(self) -> bool:
        return self._portal is not None and self._pid == os.getpid()

    def stop(self) -> None:
        """Stop the loop cleanly (worker shutdown, interpreter exit); safe to call twice.

        Coroutines still running are cancelled, and the loop closes only after they have
        unwound, so nothing is left pending.
        """
        with self._lock:
            if self._pid != os.getpid():
                self._abandon_parent_loop()
            if self._context is not None and self._portal is not None:
                with contextlib.suppress(RuntimeError):  # the portal has stopped already
                    self._portal.call(self._portal.stop, True)
                self._context.__exit__(None, None, None)
            self._portal = self._context = None
            self._loop_thread = 0

    def _abandon_parent_loop(self) -> None:
        """In a forked child: forget the parent's loop, whose thread does not exist here.

        Its objects are kept, never finalized: finalizing the portal's context would wait
        for that missing thread forever.
        """
        if self._context is not None:
            _abandoned.append(self._context)
        self._portal = self._context = None
        self._loop_thread = 0
        self._pid = os.getpid()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it during the fork
        self._abandon_parent_loop()


_bridges: weakref.WeakSet[EventLoopBridge] = weakref.WeakSet()
_abandoned: list[AbstractContextManager[BlockingPortal]] = []


def _after_fork_in_child() -> None:
    for each in list(_bridges):
        each._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)

#: The process's bridge.
bridge = EventLoopBridge()
atexit.register(bridge.stop)
