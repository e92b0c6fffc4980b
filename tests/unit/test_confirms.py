"""The confirm channel's bookkeeping, on a fake connection: acks, nacks, lost connections."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from amqp.exceptions import MessageNacked

from hexa._confirms import ConfirmChannel, ConfirmTimeout


class FakeChannel:
    def __init__(self) -> None:
        self.events: dict[str, set[Callable[..., None]]] = {"basic_ack": set(), "basic_nack": set()}
        self.sent: list[Any] = []

    def confirm_select(self) -> None: ...

    def send_method(self, method: Any, argsig: str, args: Any, message: Any) -> None:
        self.sent.append(message)

    def answer(self, kind: str, tag: int, multiple: bool = False) -> None:
        for callback in self.events[kind]:
            callback(tag, multiple)


class FakeConnection:
    """`drain_events` plays the broker: it runs the next scripted answer."""

    def __init__(self, script: list[Callable[[], None]]) -> None:
        self.default_channel = FakeChannel()
        self.script = script
        self.closed = self.collected = False

    def drain_events(self, timeout: float) -> None:
        if not self.script:
            raise TimeoutError
        self.script.pop(0)()

    def close(self) -> None:
        self.closed = True

    def collect(self) -> None:
        self.collected = True


def channel_with(script: list[Callable[[], None]]) -> tuple[ConfirmChannel, FakeConnection]:
    conn = FakeConnection(script)
    return ConfirmChannel(lambda: conn), conn


class TestConfirms:
    def test_a_multiple_ack_confirms_every_tag_up_to_it(self) -> None:
        script: list[Callable[[], None]] = []
        channel, conn = channel_with(script)
        tickets = [channel.publish(f"m{i}", "", "q", None) for i in range(3)]
        script += [lambda: conn.default_channel.answer("basic_ack", 2, multiple=True)]
        channel.wait(tickets[:2], timeout=1)
        assert [t.done for t in tickets] == [True, True, False]
        script += [lambda: conn.default_channel.answer("basic_ack", 3)]
        channel.wait(tickets, timeout=1)
        assert conn.default_channel.sent == ["m0", "m1", "m2"]

    def test_a_nack_fails_that_message_only(self) -> None:
        script: list[Callable[[], None]] = []
        channel, conn = channel_with(script)
        first, second = (channel.publish(m, "", "q", None) for m in ("a", "b"))
        script += [
            lambda: conn.default_channel.answer("basic_nack", 1),
            lambda: conn.default_channel.answer("basic_ack", 2),
        ]
        with pytest.raises(MessageNacked):
            channel.wait([first], timeout=1)
        channel.wait([second], timeout=1)

    def test_no_answer_in_time_is_a_timeout(self) -> None:
        channel, _ = channel_with([])
        ticket = channel.publish("a", "", "q", None)
        with pytest.raises(ConfirmTimeout):
            channel.wait([ticket], timeout=0.05)

    def test_a_lost_connection_fails_every_waiting_message(self) -> None:
        def lost() -> None:
            raise ConnectionResetError("broker went away")

        channel, conn = channel_with([lost])
        tickets = [channel.publish(m, "", "q", None) for m in ("a", "b")]
        with pytest.raises(ConnectionResetError):
            channel.wait(tickets[:1], timeout=1)
        assert all(isinstance(t.error, ConnectionResetError) for t in tickets)
        assert conn.collected  # dropped without a close handshake on a broken socket
        assert not conn.closed

    def test_an_interrupted_read_drops_the_connection_without_a_handshake(self) -> None:
        """Ctrl-C mid-read leaves half a frame: a graceful close there waited forever."""

        def interrupted() -> None:
            raise KeyboardInterrupt

        channel, conn = channel_with([interrupted])
        ticket = channel.publish("a", "", "q", None)
        with pytest.raises(KeyboardInterrupt):
            channel.wait([ticket], timeout=1)
        assert conn.collected
        assert not conn.closed

    def test_close_is_graceful_in_the_process_that_opened_it(self) -> None:
        channel, conn = channel_with([])
        channel.publish("a", "", "q", None)
        channel.close()
        assert conn.closed


class BeatingConnection(FakeConnection):
    """A connection with a negotiated heartbeat; `beats` counts the driver's checks."""

    def __init__(self, interval: float, fail_after: int | None = None) -> None:
        super().__init__([])
        self.interval, self.fail_after, self.beats = interval, fail_after, 0

    def get_heartbeat_interval(self) -> float:
        return self.interval

    def heartbeat_check(self, rate: int = 2) -> None:
        self.beats += 1
        if self.fail_after is not None and self.beats > self.fail_after:
            raise ConnectionResetError("too many heartbeats missed")


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


class TestHeartbeats:
    def test_an_idle_connection_is_beaten_every_half_interval(self) -> None:
        conn = BeatingConnection(interval=0.1)
        channel = ConfirmChannel(lambda: conn)
        channel.publish("a", "", "q", None)
        wait_until(lambda: conn.beats >= 3)
        channel.close()
        beats = conn.beats
        time.sleep(0.2)
        assert conn.beats <= beats + 1  # the driver stops with its connection

    def test_missed_heartbeats_fail_the_waiting_messages_and_drop_the_connection(self) -> None:
        conn = BeatingConnection(interval=0.1, fail_after=1)
        channel = ConfirmChannel(lambda: conn)
        ticket = channel.publish("a", "", "q", None)
        wait_until(lambda: ticket.done)
        assert isinstance(ticket.error, ConnectionResetError)
        assert conn.collected

    def test_no_heartbeat_negotiated_means_no_driver(self) -> None:
        conn = BeatingConnection(interval=0)
        channel = ConfirmChannel(lambda: conn)
        channel.publish("a", "", "q", None)
        time.sleep(0.1)
        assert conn.beats == 0
