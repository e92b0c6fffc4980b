"""Celery's tracer in greenlets on the event loop's own thread, each suspended on an await.

SQLAlchemy's `greenlet_spawn` / `await_only` technique (`sqlalchemy/util/_concurrency_py3k.py`),
driven by loop callbacks instead of a coroutine. Each message's trace (Celery's own: results,
task events, retries, signals, `on_failure`, acks) runs unchanged in a greenlet started by the
loop. When it reaches hexa's async entry point (`bridge.run_sync`), the greenlet starts the
coroutine as an asyncio task and switches back to the loop; the task's done-callback switches
back into the greenlet, and `run_sync` returns or raises there as it would in a pool thread.

No thread hop between a message's trace and its coroutine: a 16-thread version of this (traces
on host threads, coroutines on the loop) spent its time handing tasks between threads and
fighting for the GIL. The trace's one blocking part, storing the result, is not done here in
a blocking way: the Redis backend awaits a pipelined write instead (`hexa._result_pipeline`),
and other backends write in a worker thread (`await_in_thread`), so the loop never blocks on
it. Acks and task events are posted to the consumer's thread (`_consumer_thread`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import greenlet

from hexa._bridge import _call, bridge, suspender
from hexa._logging import get_logger

log = get_logger()
T = TypeVar("T")


class CancelledAtShutdown(BaseException):
    """Thrown into a trace whose coroutine the pool cancelled at shutdown.

    A BaseException, so Celery's tracer neither stores a failure nor acknowledges the
    message: it stays unacknowledged and the broker redelivers it.
    """


class TraceGreenlet(greenlet.greenlet):  # type: ignore[misc]  # greenlet ships no stubs here
    """One message's trace; `task` is its coroutine's asyncio task while it runs."""

    def __init__(self, run: Callable[[], None], traces: LoopTraces) -> None:
        super().__init__(run, greenlet.getcurrent())
        self.traces = traces
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False


class LoopTraces:
    """Runs traces in greenlets on the loop's thread; resumes each when what it awaits is done.

    `spawn` may be called from any thread; everything else happens on the loop's thread.
    """

    def __init__(self, on_finished: Callable[[], None]) -> None:
        self._on_finished = on_finished
        self._incoming: deque[Callable[[], None]] = deque()
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Traces started and not finished (the loop's thread only).
        self.traces: set[TraceGreenlet] = set()

    def start(self) -> None:
        self._loop = bridge.loop()

    def spawn(self, trace: Callable[[], None], wake: bool = True) -> None:
        """Run `trace()` in a new greenlet on the loop (from any thread), soon; with
        `wake=False`, once `wake()` is called (one wake-up for a burst of messages)."""
        self._incoming.append(trace)
        if wake:
            self.wake()

    def wake(self) -> None:
        """Have the loop start the traces spawned so far (from any thread)."""
        if not self._scheduled:
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._start_incoming)

    def start_soon(self, trace: Callable[[], None]) -> None:
        """Start `trace()` in the loop's next iteration (on the loop's thread)."""
        assert self._loop is not None
        self._loop.call_soon(self.start_now, trace)

    def _start_incoming(self) -> None:
        self._scheduled = False  # before draining: a trace appended from now on wakes us again
        while self._incoming:
            self.start_now(self._incoming.popleft())

    def start_now(self, trace: Callable[[], None]) -> None:
        """Start `trace()` at once (on the loop's thread); it runs up to its first await."""
        runner = TraceGreenlet(functools.partial(self._run, trace), self)
        runner.gr_context = contextvars.copy_context()  # its own, like a fresh thread's
        self.traces.add(runner)
        self._switch(runner, None)

    def _switch(self, runner: TraceGreenlet, value: Any) -> None:
        runner.switch(value)
        if runner.dead:
            self.traces.discard(runner)
            self._on_finished()

    def _run(self, trace: Callable[[], None], _: Any = None) -> None:
        suspender.set(self)
        try:
            trace()
        except BaseException:  # raised into the loop it would stop every trace
            log.exception("pool.trace_crashed")

    def cancel_all(self, timeout: float = 5.0) -> int:
        """Cancel every running coroutine (from any thread); their traces end with
        `CancelledAtShutdown`. Returns how many were cancelled."""
        counted: concurrent.futures.Future[int] = concurrent.futures.Future()

        def cancel_on_loop() -> None:
            running = [t for t in self.traces if t.task is not None and not t.task.done()]
            for runner in running:
                runner.cancelled = True
                assert runner.task is not None
                runner.task.cancel()
            counted.set_result(len(running))

        if self._loop is None or self._loop.is_closed():
            return 0
        self._loop.call_soon_threadsafe(cancel_on_loop)
        try:
            return counted.result(timeout)
        except concurrent.futures.TimeoutError:
            return 0

    # -- hexa._bridge.Suspender -------------------------------------------------------------

    def owns_current(self) -> bool:
        current = greenlet.getcurrent()
        return isinstance(current, TraceGreenlet) and current.traces is self

    def wait(
        self,
        func: Callable[..., Awaitable[Any]],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        timeout: float | None,
    ) -> Any:
        """Run the task's coroutine on the loop, in a copy of this trace's context (its task
        id for the logs); suspend this trace until it is done; its outcome."""
        current: TraceGreenlet = greenlet.getcurrent()
        assert self._loop is not None
        current.task = task = self._loop.create_task(
            _call(func, args, kwargs, timeout), context=contextvars.copy_context()
        )
        try:
            self._suspend(current, task)
        finally:
            current.task = None
        if task.cancelled():
            if current.cancelled:
                raise CancelledAtShutdown(f"cancelled at worker shutdown: {task.get_name()}")
            raise asyncio.CancelledError()
        return task.result()

    def await_future(self, future: asyncio.Future[T]) -> T:
        """Suspend this trace until `future` (of the loop) is done; its result, or raise."""
        self._suspend(greenlet.getcurrent(), future)
        return future.result()

    def await_in_thread(self, call: Callable[[], T]) -> T:
        """Run blocking `call()` in a worker thread, in a copy of this trace's context (its
        log ids, its span); suspend this trace meanwhile."""
        assert self._loop is not None
        in_context = functools.partial(contextvars.copy_context().run, call)
        return self.await_future(self._loop.run_in_executor(None, in_context))

    def _suspend(self, current: TraceGreenlet, future: asyncio.Future[Any]) -> None:
        future.add_done_callback(functools.partial(self._resume, current))
        current.parent.switch()

    def _resume(self, runner: TraceGreenlet, _: asyncio.Future[Any]) -> None:
        self._switch(runner, None)
