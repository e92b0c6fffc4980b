"""Celery's tracer in greenlets, each suspended on its task's coroutine instead of a thread.

SQLAlchemy's `greenlet_spawn` / `await_only` technique (`sqlalchemy/util/_concurrency_py3k.py`),
with one change: the greenlets live on a host thread, not on the event loop's thread. Each
message's trace (Celery's own: results, task events, retries, signals, `on_failure`, acks) runs
unchanged in a greenlet. When it reaches hexa's async entry point (`bridge.run_sync`), the
greenlet hands the coroutine to the loop and switches back to its host, which runs other
traces meanwhile; when the coroutine is done, the loop posts the finished asyncio task to the
host, which switches back into the greenlet, and `run_sync` returns or raises there as it would
in a pool thread. The blocking parts of a trace (storing the result in Redis, the ack, task
events, a dead letter) therefore run on the host thread: the loop only ever runs coroutines.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from queue import SimpleQueue
from typing import Any

import greenlet

from hexa._bridge import Ticket, bridge, suspender
from hexa._logging import get_logger

log = get_logger()

#: What a host's inbox carries: (None, a trace to start) or (its greenlet, its finished task).
_Item = tuple["TraceGreenlet | None", Any]
_STOP = object()


class CancelledAtShutdown(BaseException):
    """Thrown into a trace whose coroutine the pool cancelled at shutdown.

    A BaseException, so Celery's tracer neither stores a failure nor acknowledges the
    message: it stays unacknowledged and the broker redelivers it.
    """


class TraceGreenlet(greenlet.greenlet):  # type: ignore[misc]  # greenlet ships no stubs here
    """One message's trace; `ticket` is its coroutine on the loop while it is suspended."""

    def __init__(self, run: Callable[[], None], host: GreenletHost) -> None:
        super().__init__(run, host.hub)
        self.host = host
        self.ticket: Ticket | None = None


class GreenletHost:
    """A thread that runs traces in greenlets and resumes each when its coroutine is done."""

    def __init__(self, name: str, on_finished: Callable[[], None]) -> None:
        self._inbox: SimpleQueue[_Item | object] = SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._on_finished = on_finished
        self._started = threading.Event()
        self.hub: greenlet.greenlet | None = None
        #: Traces started and not finished (read from other threads: copy before iterating).
        self.traces: set[TraceGreenlet] = set()

    def start(self) -> None:
        self._thread.start()
        self._started.wait()

    def stop(self, timeout: float = 5.0) -> None:
        self._inbox.put(_STOP)
        self._thread.join(timeout)

    def spawn(self, trace: Callable[[], None]) -> None:
        """Run `trace()` in a new greenlet on this host (from any thread)."""
        self._inbox.put((None, trace))

    def cancel_all(self) -> int:
        """Cancel every suspended coroutine; their traces end with `CancelledAtShutdown`."""
        tickets = [g.ticket for g in list(self.traces) if g.ticket is not None]
        for ticket in tickets:
            ticket.cancel()
        return len(tickets)

    def _serve(self) -> None:
        self.hub = greenlet.getcurrent()
        self._started.set()
        while (item := self._inbox.get()) is not _STOP:
            assert isinstance(item, tuple)
            trace, value = item
            if trace is None:
                trace = TraceGreenlet(functools.partial(self._run, value), self)
                trace.gr_context = contextvars.copy_context()  # its own, like a fresh thread's
                self.traces.add(trace)
                trace.switch()
            else:
                trace.switch(value)
            if trace.dead:
                self.traces.discard(trace)
                self._on_finished()

    def _run(self, trace: Callable[[], None]) -> None:
        suspender.set(self)
        try:
            trace()
        except BaseException:  # raised into this host it would stop every trace on it
            log.exception("pool.trace_crashed")

    # -- hexa._bridge.Suspender -------------------------------------------------------------

    def owns_current(self) -> bool:
        current = greenlet.getcurrent()
        return isinstance(current, TraceGreenlet) and current.host is self

    def wait(
        self,
        func: Callable[..., Awaitable[Any]],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        timeout: float | None,
    ) -> Any:
        """Suspend this trace until its coroutine is done on the loop; its outcome."""
        current: TraceGreenlet = greenlet.getcurrent()
        post = functools.partial(self._post, current)
        current.ticket = ticket = bridge.submit(func, args, kwargs, timeout, post)
        assert self.hub is not None
        task: asyncio.Task[Any] = self.hub.switch()
        current.ticket = None
        return _outcome(task, ticket)

    def _post(self, trace: TraceGreenlet, task: asyncio.Task[Any]) -> None:
        self._inbox.put((trace, task))  # on the loop thread: the host resumes the trace


def _outcome(task: asyncio.Task[Any], ticket: Ticket) -> Any:
    if task.cancelled():
        if ticket.cancelled:
            raise CancelledAtShutdown(f"cancelled at worker shutdown: {task.get_name()}")
        raise asyncio.CancelledError()
    error = task.exception()
    if error is not None:
        raise error
    return task.result()
