"""Celery's request callbacks (acks, task events) run on the consumer's thread, as in prefork.

A task's `on_accepted` / `on_success` callbacks acknowledge its message and send its
`task-started` / `task-succeeded` events. Sent from another thread they race the consumer's
event loop (kombu's hub) for the event connection: with publisher confirms the hub reads the
confirm a waiting thread needs, and task events stall for seconds (the reason hexa turns
events off on the threads pool). Here they are queued and run by the hub itself, woken by a
pipe; prefork hands its results to the main process the same way. Without a hub (a transport
with no event loop, such as the embedded file broker) they run at once where they are posted.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable
from typing import Any

from hexa._bridge import bridge
from hexa._logging import get_logger

log = get_logger()


class ConsumerThreadCalls:
    """A queue of calls the consumer's thread runs: from its hub, or while it waits."""

    def __init__(self) -> None:
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._hub: Any = None
        self._signalled = False
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)

    def register(self, hub: Any) -> None:
        """Let the consumer's hub (`register_with_event_loop`) run what is posted."""
        hub.add_reader(self._read_fd, self.run_pending)
        self._hub = hub

    def post(self, call: Callable[..., Any], *args: Any) -> None:
        """Run `call(*args)` on the consumer's thread, soon (from any thread)."""
        if self._hub is None:
            call(*args)
            return
        self._calls.append((call, args))
        if not self._signalled:
            self._signalled = True
            if bridge.on_loop_thread():  # one wake-up for every task this loop turn ended
                bridge.loop().call_soon(self._wake)
            else:
                self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake-up is pending already
            os.write(self._write_fd, b"\0")

    def run_pending(self) -> None:
        """Run every posted call, in order (on the consumer's thread)."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._read_fd, 4096)
        self._signalled = False  # after the read: a wake-up written from now on stays
        while self._calls:
            call, args = self._calls.popleft()
            try:
                call(*args)
            except Exception:
                log.exception("pool.callback_failed", call=getattr(call, "__qualname__", call))

    def close(self) -> None:
        if self._hub is not None:
            with contextlib.suppress(Exception):
                self._hub.remove_reader(self._read_fd)
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
