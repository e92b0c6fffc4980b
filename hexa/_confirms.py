"""Publisher confirms, pipelined: publish now, wait for the broker's confirm of that one tag.

kombu waits for each confirm inside `publish()`, holding the connection: one round trip per
message, and concurrent callers queue behind each other's round trips. Here a process keeps
one connection for task messages, its channel in confirm mode. A caller writes its message
(a lock held only for the write), gets the delivery tag, and waits for that tag's confirm.
Whoever waits reads the connection for everyone (one reader at a time), and RabbitMQ's
`multiple` acks confirm many tags in one frame, so callers in several threads, or one caller
sending a batch, share the broker's disk writes. The others sleep each on a lock of its own:
the reader wakes only the callers whose tags it settled, and, when its own are settled, one
caller still waiting to read next (a shared condition woke all 15 others of 16 threads for
every ack frame).

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

from hexa._frames import Framed, frames

#: Longest single read while waiting, so a waiter notices its own deadline.
_READ_SLICE = 0.2


class Ticket:
    """One published message: its delivery tag, and the broker's answer once known."""

    __slots__ = ("done", "error", "tag")

    def __init__(self, tag: int) -> None:
        self.tag = tag
        self.done = False
        self.error: BaseException | None = None


class _Waiter:
    """One caller waiting: its tickets (None: it waits to read, to connect or declare), and
    a lock it sleeps on, held from the start and released by whoever wakes it."""

    __slots__ = ("listed", "lock", "next", "tickets")

    def __init__(self, tickets: list[Ticket] | None) -> None:
        self.tickets, self.next, self.listed = tickets, 0, False
        self.lock = threading.Lock()
        self.lock.acquire()

    def settled(self) -> bool:
        """Whether every ticket has its answer (cheap: answers come in order)."""
        tickets = self.tickets
        if tickets is None:
            return False
        while self.next < len(tickets) and tickets[self.next].done:
            self.next += 1
        return self.next == len(tickets)

    def sleep(self, timeout: float) -> None:
        """Until woken or `timeout`; the lock is held again either way."""
        self.lock.acquire(timeout=max(0.001, timeout))


class ConfirmTimeout(TimeoutError):
    """The broker did not confirm in time (the connection may be blocked or gone)."""


class ConfirmChannel:
    """One AMQP connection for task messages, with pipelined confirms (one per process:
    a forked child makes its own, see `hexa._publisher`)."""

    def __init__(self, connect: Any) -> None:
        self._connect = connect  # () -> kombu Connection, connected
        self._write = threading.Lock()  # the socket's writes and the tag numbering
        self._mutex = threading.Lock()  # tickets' answers, the reader's role, the sleepers
        self._reading = False
        self._sleepers: list[_Waiter] = []
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
            self._exclusive(lambda: self._prepare(queue))
        with self._write:
            channel = self._channel
            if channel is None:  # dropped meanwhile by a failed read
                raise ConnectionError("the publishing connection was lost; sending again")
            ticket = self._ticket()
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

    def publish_frames(self, sent: Framed) -> Ticket:
        """`publish`, for a message already encoded (`hexa._frames`): one socket write."""
        if self._channel is None or self._needs(sent.declare):
            self._exclusive(lambda: self._prepare(sent.declare))
        with self._write:
            channel = self._channel
            conn = channel and channel.connection
            if conn is None:  # dropped meanwhile by a failed read
                raise ConnectionError("the publishing connection was lost; sending again")
            data = frames(channel.channel_id, conn.frame_max, sent.method, sent.header, sent.body)
            ticket = self._ticket()
            try:
                conn.transport.write(data)
                conn.bytes_sent += 1  # what py-amqp counts for heartbeats
            except BaseException as error:
                self._fail_all(error)
                raise
        return ticket

    def _ticket(self) -> Ticket:
        """The next delivery tag, pending before its message is written (its ack may come
        before the write returns)."""
        self._next += 1
        ticket = self._pending[self._next] = Ticket(self._next)
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
        _read_ahead(conn)
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
            self._exclusive(lambda: self._tick(conn))

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
        """Tags are pending in the order they were written: `multiple` settles a prefix.
        Wakes the sleepers whose tickets are now all answered, and only those."""
        with self._mutex:
            pending = self._pending
            while multiple and pending and next(iter(pending)) < tag:
                earlier = pending.pop(next(iter(pending)))
                earlier.done, earlier.error = True, error
            ticket: Ticket | None = pending.pop(tag, None)
            if ticket is not None:
                ticket.done, ticket.error = True, error
            if self._sleepers:
                self._sleepers = [w for w in self._sleepers if not _woken(w, w.settled())]

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
        waiter = _Waiter(tickets)
        try:
            while not waiter.settled():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if self._lead(waiter):
                    try:
                        self._read(waiter, deadline)
                    finally:
                        self._hand_over()
                else:
                    waiter.sleep(min(_READ_SLICE, left))
        finally:
            self._unlist(waiter)

    def _lead(self, waiter: _Waiter) -> bool:
        """True: `waiter` is now the reader. False: another reads; `waiter` is listed to be
        woken (or is settled already)."""
        with self._mutex:
            if waiter.settled():
                return False
            if not self._reading:
                self._reading = True
                return True
            if not waiter.listed:
                waiter.listed = True
                self._sleepers.append(waiter)
            return False

    def _hand_over(self) -> None:
        """The reader is done: the first sleeper still waiting becomes the next reader."""
        with self._mutex:
            self._reading = False
            for index, waiter in enumerate(self._sleepers):
                if not waiter.settled():
                    del self._sleepers[index]
                    _woken(waiter, True)
                    return

    def _unlist(self, waiter: _Waiter) -> None:
        if waiter.listed:
            with self._mutex:
                if waiter.listed:
                    waiter.listed = False
                    self._sleepers.remove(waiter)

    def _read(self, waiter: _Waiter, deadline: float) -> None:
        """Read the connection (settling everyone's tickets) until ours are, or `deadline`."""
        while not waiter.settled():
            left = deadline - time.monotonic()
            conn = self._conn
            if conn is None or left <= 0:
                return
            try:
                conn.drain_events(timeout=max(0.01, min(_READ_SLICE, left)))
            except TimeoutError:
                continue
            except BaseException as error:  # an interrupted read leaves half a frame: drop it
                self._fail_all(error)
                if not isinstance(error, Exception):
                    raise
                return

    def _exclusive(self, work: Any) -> None:
        """Run `work` as the connection's only reader (connecting, declaring)."""
        waiter = _Waiter(None)
        try:
            while not self._lead(waiter):
                waiter.sleep(_READ_SLICE)
        finally:
            self._unlist(waiter)
        try:
            work()
        finally:
            self._hand_over()

    def _fail_all(self, error: BaseException) -> None:
        """The connection is unusable: every waiting tag fails, the next publish reconnects."""
        with self._mutex:
            for ticket in self._pending.values():
                ticket.done, ticket.error = True, error
            self._pending = {}
            for waiter in self._sleepers:
                _woken(waiter, True)
            self._sleepers = []
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


def _read_ahead(conn: Any) -> None:
    """py-amqp reads a frame in three `recv` calls (header, payload, end byte), each behind
    a `poll` while a read timeout is set: six system calls per ack. Asking for up to 64 KiB
    at once, the surplus stays in py-amqp's own read buffer (its `_read` keeps it), so a
    burst of acks costs one `recv`. Only on this connection, which only reads acks."""
    transport: Any = getattr(getattr(conn, "connection", None), "transport", None)
    sock = getattr(transport, "sock", None)
    if type(transport).__name__ != "TCPTransport" or sock is None:
        return
    recv = sock.recv
    transport._quick_recv = lambda size: recv(max(size, 65536))


def _woken(waiter: _Waiter, wake: bool) -> bool:
    """Wake `waiter` when `wake` (it is no longer listed); returns `wake`."""
    if wake:
        waiter.listed = False
        waiter.lock.release()
    return wake


def _heartbeat_interval(conn: Any) -> float:
    """The heartbeat interval negotiated with the broker (0: none)."""
    get = getattr(conn, "get_heartbeat_interval", None)
    return float(get() or 0) if get is not None else 0.0


def failed(error: BaseException) -> Ticket:
    """A ticket for a message that could not even be written (the connection was down)."""
    ticket = Ticket(0)
    ticket.done, ticket.error = True, error
    return ticket
