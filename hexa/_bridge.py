"""Sync-to-async bridge: one persistent event loop per process, shared by every async task.

`asyncio.run()` per task (the seed's wrapper) closes the loop after each call, which breaks
async clients reused across tasks and lets no two coroutines overlap. Here the loop runs on a
daemon thread for the life of the process (anyio's blocking portal). Every coroutine runs as
its own asyncio task, in a copy of its caller's context (structlog's task id, OpenTelemetry's
span), so nothing bound inside one task leaks into another or back to the caller.

Two ways in: `run_sync` blocks the calling thread until the coroutine is done (threads,
prefork and solo pools: one waiting thread per task in flight); `submit` only schedules it and
calls back when it is done, which is what the asyncio pool builds on (`hexa._pools`). A pool
greenlet that reaches `run_sync` is suspended instead of blocking (see `Suspender`).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from hexa._exceptions import TaskTimeoutError

R = TypeVar("R")
#: Called on the loop thread with the finished asyncio task.
Done = Callable[["asyncio.Task[Any]"], object]


async def _call(
    func: Callable[..., Awaitable[R]],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    timeout: float | None,
) -> R:
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


class Suspender(Protocol):
    """Something that can wait for a coroutine without blocking its thread (a greenlet)."""

    def owns_current(self) -> bool:
        """True when the code running now may be suspended by this suspender."""

    def wait(
        self,
        func: Callable[..., Awaitable[Any]],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        timeout: float | None,
    ) -> Any:
        """Run the coroutine on the loop; return (or raise) its outcome once it is done."""

    def await_future(self, future: asyncio.Future[R]) -> R:
        """Suspend until `future` (of the loop) is done; its result (the loop's thread only)."""

    def await_in_thread(self, call: Callable[[], R]) -> R:
        """Run blocking `call()` in a worker thread, suspended meanwhile (the loop's thread)."""


def loop_suspender() -> Suspender | None:
    """The suspender of the code running now when it runs on the loop's own thread (a trace
    of the asyncio pool): blocking I/O there must go through it, or it stalls the loop."""
    waiting = suspender.get()
    if waiting is not None and bridge.on_loop_thread() and waiting.owns_current():
        return waiting
    return None


#: Set by a pool in the context of each task it suspends rather than blocks.
suspender: contextvars.ContextVar[Suspender | None] = contextvars.ContextVar(
    "hexa_suspender", default=None
)


class Ticket:
    """A submitted coroutine: its asyncio task once the loop has started it."""

    __slots__ = ("_bridge", "cancelled", "task")

    def __init__(self, bridge: EventLoopBridge) -> None:
        self._bridge = bridge
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False

    def cancel(self) -> None:
        """Cancel the coroutine (from any thread); a no-op once it is done."""
        self.cancelled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs anyway
            self._bridge.loop().call_soon_threadsafe(self._cancel_on_loop)

    def _cancel_on_loop(self) -> None:
        if self.task is not None:
            self.task.cancel()


class EventLoopBridge:
    """From sync threads to the process's event loop (started on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._context: AbstractContextManager[BlockingPortal] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
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

    def loop(self) -> asyncio.AbstractEventLoop:
        """This process's event loop, started if need be."""
        self.portal()
        assert self._loop is not None
        return self._loop

    def _start(self) -> None:
        self._context = start_blocking_portal(backend="asyncio")
        portal = self._context.__enter__()
        self._loop = portal.call(_running_loop)
        self._loop_thread = portal.call(threading.get_ident)
        self._pid = os.getpid()
        self._portal = portal

    def on_loop_thread(self) -> bool:
        return self.running and threading.get_ident() == self._loop_thread

    def submit(
        self,
        func: Callable[..., Awaitable[Any]],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        timeout: float | None,
        done: Done,
        context: contextvars.Context | None = None,
    ) -> Ticket:
        """Start `func(*args, **kwargs)` on the loop in `context` (a copy of the caller's).

        Returns at once; `done(task)` runs on the loop thread when the coroutine is over.
        """
        context = contextvars.copy_context() if context is None else context
        ticket = Ticket(self)
        self.loop().call_soon_threadsafe(
            self._spawn, ticket, func, args, kwargs, timeout, done, context
        )
        return ticket

    def _spawn(
        self,
        ticket: Ticket,
        func: Callable[..., Awaitable[Any]],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        timeout: float | None,
        done: Done,
        context: contextvars.Context,
    ) -> None:
        assert self._loop is not None
        task = self._loop.create_task(_call(func, args, kwargs, timeout), context=context)
        task.add_done_callback(done)
        ticket.task = task
        if ticket.cancelled:
            task.cancel()

    def run_sync(
        self,
        func: Callable[..., Awaitable[R]],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> R:
        """Run `await func(*args, **kwargs)` on the loop and wait for it in this thread."""
        waiting = suspender.get()
        if waiting is not None and waiting.owns_current():
            result: R = waiting.wait(func, args, kwargs or {}, timeout)
            return result
        self.portal()
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError(
                f"cannot wait for {getattr(func, '__qualname__', func)} on hexa's event loop "
                "from that loop's own thread (it would wait on itself); in async code, "
                "`await` the task instead: `await task(...)`"
            )
        future: concurrent.futures.Future[R] = concurrent.futures.Future()
        self.submit(func, args, kwargs or {}, timeout, _resolve(future))
        return future.result()

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
            self._portal = self._context = self._loop = None
            self._loop_thread = 0

    def _abandon_parent_loop(self) -> None:
        """In a forked child: forget the parent's loop, whose thread does not exist here.

        Its objects are kept, never finalized: finalizing the portal's context would wait
        for that missing thread forever.
        """
        if self._context is not None:
            _abandoned.append(self._context)
        self._portal = self._context = self._loop = None
        self._loop_thread = 0
        self._pid = os.getpid()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it during the fork
        self._abandon_parent_loop()


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def _resolve(future: concurrent.futures.Future[R]) -> Done:
    """A done-callback that hands the task's outcome to a waiting thread."""

    def done(task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            future.cancel()
        elif (error := task.exception()) is not None:
            future.set_exception(error)
        else:
            future.set_result(task.result())

    return done


_bridges: weakref.WeakSet[EventLoopBridge] = weakref.WeakSet()
_abandoned: list[AbstractContextManager[BlockingPortal]] = []


def _after_fork_in_child() -> None:
    for each in list(_bridges):
        each._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)

#: The process's bridge.
bridge = EventLoopBridge()
atexit.register(bridge.stop)
