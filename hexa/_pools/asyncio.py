"""`hexa worker --pool asyncio --concurrency N`: async tasks in flight on the loop, no thread each.

A Celery execution pool (`celery.concurrency.base.BasePool`, modelled on `thread.py`). Each
async task's message is traced by Celery's own tracer in a greenlet on the event loop's thread
(`hexa._pools._greenlets`), suspended while its coroutine runs on the process's persistent
loop, so up to N coroutines are in flight with no thread each and no hop between threads.
Sync tasks sent to the same worker run in a bounded thread pool, never on the loop. Prefetch
follows N (Celery: concurrency x multiplier).

Warm shutdown waits up to `HEXA_SHUTDOWN_GRACE` seconds (default 20) for tasks in flight, then
cancels the coroutines still running: their messages are not acknowledged, so the broker
redelivers them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from celery.concurrency.base import BasePool, apply_target

from hexa._exceptions import ConfigurationError
from hexa._logging import get_logger
from hexa._pools._consumer_thread import ConsumerThreadCalls
from hexa._pools._greenlets import CancelledAtShutdown, LoopTraces
from hexa._settings import read_dotenv

log = get_logger()

GRACE_ENV = "HEXA_SHUTDOWN_GRACE"
DEFAULT_GRACE = 20.0
#: The sync tasks' thread pool: at most this many, and never more than the concurrency.
MAX_SYNC_THREADS = 32


def shutdown_grace(environ: Mapping[str, str] | None = None) -> float:
    """`HEXA_SHUTDOWN_GRACE` (environment, then `./.env`): seconds before cancelling."""
    if environ is None:
        environ = {**read_dotenv(Path.cwd() / ".env"), **os.environ}
    text = environ.get(GRACE_ENV, "").strip()
    try:
        grace = float(text) if text else DEFAULT_GRACE
    except ValueError:
        grace = -1.0
    if grace < 0:
        raise ConfigurationError(f"{GRACE_ENV}={text!r}: give seconds >= 0, e.g. {GRACE_ENV}=20")
    return grace


class ApplyResult:
    """What Celery keeps for a sync task run in a thread (as Celery's threads pool does)."""

    def __init__(self, future: Future[Any]) -> None:
        self.f = future
        self.get = future.result

    def wait(self, timeout: float | None = None) -> None:
        self.f.exception(timeout)


class TaskPool(BasePool):
    """Async tasks as coroutines on the event loop, up to `limit` at once; sync ones in threads."""

    limit: int
    body_can_be_buffer = True
    signal_safe = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _check_prefetch(self.limit, getattr(self.app, "conf", None))
        self.grace = shutdown_grace()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._waiting: deque[tuple[Callable[[], None], Callable[[float], Any] | None]] = deque()
        self._idle = threading.Condition(self._lock)
        self._traces = LoopTraces(self._finished)
        self._sync = ThreadPoolExecutor(
            max_workers=max(1, min(self.limit, MAX_SYNC_THREADS)), thread_name_prefix="hexa-sync"
        )
        self._async_names: dict[str, bool] = {}
        self._consumer_thread = ConsumerThreadCalls()
        self._hub: Any = None
        self._wake_pending = False

    def register_with_event_loop(self, loop: Any) -> None:
        """Celery's hub (the consumer's thread) runs the acks and task events, and wakes the
        event loop once per burst of messages it received, not once per message."""
        self._consumer_thread.register(loop)
        self._hub = loop

    def on_start(self) -> None:
        _check_greenlet_locals()
        self._traces.start()  # the persistent loop, up before the first message
        log.info("pool.started", pool="asyncio", concurrency=self.limit, grace=self.grace)

    def on_apply(  # type: ignore[override]  # celery-types: (*args, **kwargs) -> None
        self,
        target: Callable[..., Any],
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        callback: Callable[..., Any] | None = None,
        accept_callback: Callable[..., Any] | None = None,
        **_: Any,
    ) -> ApplyResult | None:
        post = self._consumer_thread.post
        done = callback and functools.partial(post, callback)
        if not self._is_async(args):
            accepted = accept_callback and functools.partial(post, accept_callback)
            run = functools.partial(
                apply_target, target, args, kwargs, done, accepted, propagate=_PROPAGATE
            )
            return ApplyResult(self._sync.submit(run))
        # An async task is accepted (Celery's `on_accepted`: `active` list, `task-started`
        # event) when it gets its slot, by this thread: no extra wake-up of it per task.
        run = functools.partial(apply_target, target, args, kwargs, done, propagate=_PROPAGATE)
        accepted = accept_callback and functools.partial(accept_callback, os.getpid())
        self._admit(functools.partial(_traced, run), accepted)
        return None

    def _is_async(self, args: tuple[Any, ...] | None) -> bool:
        """Celery's trace arguments start with the task's name: is that task `async def`?"""
        name = args[0] if args else None
        if not isinstance(name, str):
            return False
        found = self._async_names.get(name)
        if found is None:
            task = self.app.tasks.get(name) if self.app is not None else None
            found = self._async_names[name] = _awaits(task)
        return found

    def _admit(self, trace: Callable[[], None], accepted: Callable[[float], Any] | None) -> None:
        """Start the trace now, or once a slot is free (at most `limit` in flight); `accepted`
        runs on the consumer's thread as it starts."""
        with self._lock:
            if self._in_flight >= self.limit:
                self._waiting.append((trace, accepted))
                return
            self._in_flight += 1
        if accepted is not None:
            accepted(time.monotonic())
        if self._hub is None:
            self._traces.spawn(trace)
            return
        self._traces.spawn(trace, wake=False)
        if not self._wake_pending:  # the hub's next turn, after this burst of messages
            self._wake_pending = True
            self._hub.call_soon(self._wake_loop)

    def _wake_loop(self) -> None:
        self._wake_pending = False
        self._traces.wake()

    def _finished(self) -> None:
        """A trace ended (on the loop's thread): start a waiting one, or free the slot."""
        with self._lock:
            waiting = self._waiting.popleft() if self._waiting else None
            if waiting is None:
                self._in_flight -= 1
                self._idle.notify_all()
        if waiting is not None:
            trace, accepted = waiting
            if accepted is not None:
                self._consumer_thread.post(accepted, time.monotonic())
            self._traces.start_soon(trace)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    # -- shutdown ---------------------------------------------------------------------------

    def on_stop(self) -> None:
        """Warm shutdown: let tasks in flight finish within the grace period, then cancel."""
        self._drop_waiting()
        if not self._wait_idle(self.grace):
            self._cancel_in_flight()
        self._sync.shutdown(wait=True, cancel_futures=True)
        self._consumer_thread.run_pending()  # the last acks
        self._consumer_thread.close()

    def on_terminate(self) -> None:
        """Cold shutdown: cancel at once; nothing cancelled is acknowledged."""
        self._drop_waiting()
        self._cancel_in_flight()
        self._sync.shutdown(wait=False, cancel_futures=True)

    def _drop_waiting(self) -> None:
        with self._lock:
            dropped = len(self._waiting)
            self._waiting.clear()
        if dropped:
            log.info("pool.not_started", count=dropped, outcome="redelivered later")

    def _wait_idle(self, timeout: float) -> bool:
        """Wait (on the consumer's thread, at shutdown) for traces to end, acking as they do."""
        deadline = time.monotonic() + timeout
        while self._in_flight and (left := deadline - time.monotonic()) > 0:
            self._consumer_thread.run_pending()
            with self._lock:
                self._idle.wait(min(left, 0.05))
        self._consumer_thread.run_pending()
        return not self._in_flight

    def _cancel_in_flight(self) -> None:
        cancelled = self._traces.cancel_all()
        log.warning(
            "pool.cancelled_at_shutdown",
            count=cancelled,
            grace=self.grace,
            outcome="not acknowledged: the broker redelivers them",
        )
        self._wait_idle(5.0)

    def _get_info(self) -> dict[str, Any]:
        return {
            "implementation": f"{type(self).__module__}:{type(self).__name__}",
            "max-concurrency": self.limit,
            "in-flight": self._in_flight,
            "sync-threads": self._sync._max_workers,
        }


#: Raised through Celery's `apply_target` rather than reported as a failure.
_PROPAGATE = (CancelledAtShutdown,)

#: AMQP's prefetch count is 16 bits.
MAX_PREFETCH = 65535


def _check_prefetch(limit: int, conf: Any) -> None:
    """N x the prefetch multiplier must fit AMQP's prefetch count, or the consumer fails."""
    multiplier = int(getattr(conf, "worker_prefetch_multiplier", 1) or 1)
    if limit * multiplier > MAX_PREFETCH:
        raise ConfigurationError(
            f"--concurrency {limit} x prefetch multiplier {multiplier} = {limit * multiplier} "
            f"messages exceeds the broker's prefetch limit of {MAX_PREFETCH}; set "
            f"HEXA_PREFETCH_MULTIPLIER=1 or lower --concurrency (or use --processes)"
        )


def _awaits(task: Any) -> bool:
    """Is this the bridge to an `async def` (hexa's entry point wraps the coroutine function)?"""
    run = getattr(task, "run", None)
    return run is not None and inspect.iscoroutinefunction(inspect.unwrap(run))


def _check_greenlet_locals() -> None:
    """Celery's task and request stacks must be per greenlet, or tasks read each other's."""
    import greenlet
    from celery.utils import threads

    if threads.get_ident is not greenlet.getcurrent or getattr(threads, "USE_FAST_LOCALS", None):
        raise ConfigurationError(
            "--pool asyncio needs Celery's per-greenlet task stacks: unset USE_FAST_LOCALS "
            "and make sure greenlet is installed before Celery is imported"
        )


def _traced(run: Callable[[], None]) -> None:
    """One trace in its greenlet; a cancellation at shutdown ends it without an ack."""
    with contextlib.suppress(CancelledAtShutdown):
        run()
