"""Publisher confirms, pipelined: publish now, wait for the broker's confirm of that one tag.

kombu waits for each confirm inside `publish()`, holding the connection: one round trip per
message, and concurrent callers queue behind each other's round trips. Here a process keeps
one connection for task messages, its channel in confirm mode. A caller writes its message
(a lock held only for the write), gets the delivery tag, and waits for that tag's confirm.
Whoever waits reads the connection for everyone (one reader at a time; the others sleep on a
condition), and RabbitMQ's `multiple` acks confirm many tags in one frame, so callers in
several threads, or one caller sending a batch, share the broker's disk writes.

A connection error, a channel closed by the broker, or a nack fails the tags still waiting
on that connection; the connection is dropped and the next publish opens a new one (on the
next broker of a cluster's list, see `hexa._publisher`). The caller's retry loop sends the
same message again.

Heartbeats: nobody reads an idle publishing connection, so AMQP heartbeats (`HEXA_HEARTBEAT`)
need a driver: a small daemon thread per connection sends ours and reads the broker's, as the
reader, every half interval. Without it the broker would drop an idle publisher, and a
publisher whose broker vanished (a cut link) would only learn it on its next publish.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

from amqp import spec
from amqp.exceptions import MessageNacked
from kombu import Connection, Queue

#: Longest single read while waiting, so a waiter notices its own deadline.
_READ_SLICE = 0.2


class Ticket:
    """One published message: its delivery tag, and the broker's answer once known."""

    __slots__ = ("done", "error", "tag")

    def __init__(self, tag: int) -> None:
        self.tag = tag
        self.done = False
        self.error: BaseException | None = None


class _Waiting:
    """The tickets one caller waits for; checking them is cheap (answers come in order)."""

    __slots__ = ("next", "tickets")

    def __init__(self, tickets: list[Ticket]) -> None:
        self.tickets, self.next = tickets, 0

    def settled(self) -> bool:
        tickets = self.tickets
        while self.next < len(tickets) and tickets[self.next].done:
            self.next += 1
        return self.next == len(tickets)


class ConfirmTimeout(TimeoutError):
    """The broker did not confirm in time (the connection may be blocked or gone)."""


class ConfirmChannel:
    """One AMQP connection for task messages, with pipelined confirms (one per process:
    a forked child makes its own, see `hexa._publisher`)."""

    def __init__(self, connect: Any) -> None:
        self._connect = connect  # () -> kombu Connection, connected
        self._write = threading.Lock()
        self._cond = threading.Condition()
        self._reading = False
        self._conn: Connection | None = None
        self._channel: Any = None
        self._pending: dict[int, Ticket] = {}
        self._declared: set[int] = set()
        self._next = 0
        self._owner = os.getpid()

    # -- publishing ----------------------------------------------------------------------

    def publish(self, message: Any, exchange: str, routing_key: str, queue: Queue | None) -> Ticket:
        """Write one message now (connecting and declaring `queue` first when needed)."""
        if self._channel is None or self._needs(queue):
            self._as_reader(lambda: self._prepare(queue))
        with self._write:
            channel = self._channel
            if channel is None:  # dropped meanwhile by a failed read
                raise ConnectionError("the publishing connection was lost; sending again")
            self._next += 1
            ticket = self._pending[self._next] = Ticket(self._next)
            try:
                # Not `basic_publish`: py-amqp's reads the socket first (timeout 0) to catch a
                # connection.blocked frame, which would race the waiter reading for acks.
                channel.send_method(
                    spec.Basic.Publish, "Bssbb", (0, exchange, routing_key, False, False), message
                )
            except BaseException as error:
                self._fail_all(error)
                raise
        return ticket

    def _needs(self, queue: Queue | None) -> bool:
        return queue is not None and hash(queue) not in self._declared

    def _prepare(self, queue: Queue | None) -> None:
        """Connect (confirm mode on) and declare `queue`: as the reader, so replies are ours."""
        with self._write:
            if self._channel is None:
                self._open()
            if self._needs(queue):
                assert queue is not None
                queue.bind(self._channel).declare()
                self._declared.add(hash(queue))

    def _open(self) -> None:
        self._drop(graceful=False)
        conn = self._connect()
        channel = conn.default_channel
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self._conn, self._channel = conn, channel
        self._pending, self._declared, self._next = {}, set(), 0
        interval = _heartbeat_interval(conn)
        if interval:
            threading.Thread(
                target=self._beat, args=(conn, interval), name="hexa-heartbeat", daemon=True
            ).start()

    # -- heartbeats ----------------------------------------------------------------------

    def _beat(self, conn: Any, interval: float) -> None:
        """While `conn` is this channel's: send our heartbeats, read the broker's."""
        while True:
            time.sleep(interval / 2)
            if not self._current(conn) or os.getpid() != self._owner:
                return
            self._as_reader(lambda: self._tick(conn))

    def _current(self, conn: Any) -> bool:
        return self._conn is conn

    def _tick(self, conn: Any) -> None:
        if not self._current(conn):
            return
        try:
            with self._write:  # a heartbeat frame must not land inside a message's frames
                conn.heartbeat_check(rate=2)
            conn.drain_events(timeout=0.01)  # the broker's heartbeats (and any late acks)
        except TimeoutError:
            return
        except Exception as error:  # missed heartbeats, a reset: the next publish reconnects
            self._fail_all(error)

    # -- confirms ------------------------------------------------------------------------

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple, None)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple, MessageNacked("the broker refused the message (nack)"))

    def _settle(self, tag: int, multiple: bool, error: BaseException | None) -> None:
        """Tags are pending in the order they were written: `multiple` settles a prefix."""
        with self._cond:
            pending = self._pending
            while multiple and pending and next(iter(pending)) < tag:
                earlier = pending.pop(next(iter(pending)))
                earlier.done, earlier.error = True, error
            ticket: Ticket | None = pending.pop(tag, None)
            if ticket is not None:
                ticket.done, ticket.error = True, error
            self._cond.notify_all()

    def wait(self, tickets: Iterable[Ticket], timeout: float) -> None:
        """Until every ticket is confirmed; raises the first failure, or `ConfirmTimeout`."""
        tickets = list(tickets)
        self.settle(tickets, timeout)
        for ticket in tickets:
            if ticket.error is not None:
                raise ticket.error
            if not ticket.done:
                raise ConfirmTimeout("the broker did not confirm the message in time")

    def settle(self, tickets: list[Ticket], timeout: float) -> None:
        """Until every ticket has the broker's answer, or `timeout`; never raises."""
        deadline = time.monotonic() + timeout
        waiting = _Waiting(tickets)
        while not waiting.settled() and time.monotonic() < deadline:
            self._as_reader(lambda: self._read(waiting, deadline), until=waiting, deadline=deadline)

    def _read(self, waiting: _Waiting, deadline: float) -> None:
        conn = self._conn
        if conn is None or waiting.settled():
            return
        try:
            conn.drain_events(timeout=max(0.01, min(_READ_SLICE, deadline - time.monotonic())))
        except TimeoutError:
            return
        except BaseException as error:  # an interrupted read leaves half a frame: drop it
            self._fail_all(error)
            if not isinstance(error, Exception):
                raise

    def _as_reader(
        self,
        work: Any,
        until: _Waiting | None = None,
        deadline: float = 0.0,
    ) -> None:
        """Run `work` as the connection's only reader; while another reads, wait for it.

        With `until`, returns early (without reading) once those tickets are settled.
        """
        with self._cond:
            while self._reading:
                if until is not None and until.settled():
                    return
                self._cond.wait(
                    timeout=max(0.001, min(_READ_SLICE, deadline - time.monotonic()))
                    if until is not None
                    else _READ_SLICE
                )
                if until is not None and time.monotonic() >= deadline:
                    return
            self._reading = True
        try:
            work()
        finally:
            with self._cond:
                self._reading = False
                self._cond.notify_all()

    def _fail_all(self, error: BaseException) -> None:
        """The connection is unusable: every waiting tag fails, the next publish reconnects."""
        with self._cond:
            for ticket in self._pending.values():
                ticket.done, ticket.error = True, error
            self._pending = {}
            self._cond.notify_all()
        self._drop(graceful=False)

    def _drop(self, graceful: bool) -> None:
        """Forget the connection; a broken one is closed without talking to the broker."""
        conn, self._conn, self._channel = self._conn, None, None
        self._declared = set()
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing more to release
                conn.close() if graceful else conn.collect()

    def close(self) -> None:
        """Close the connection (in the process that opened it; a forked child never does)."""
        if os.getpid() != self._owner:
            return
        with self._write:
            self._drop(graceful=True)


def _heartbeat_interval(conn: Any) -> float:
    """The heartbeat interval negotiated with the broker (0: none)."""
    get = getattr(conn, "get_heartbeat_interval", None)
    return float(get() or 0) if get is not None else 0.0


def failed(error: BaseException) -> Ticket:
    """A ticket for a message that could not even be written (the connection was down)."""
    ticket = Ticket(0)
    ticket.done, ticket.error = True, error
    return ticket
