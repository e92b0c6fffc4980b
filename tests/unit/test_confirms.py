"""The confirm channel's bookkeeping, on a fake connection: acks, nacks, lost connections."""

from __future__ import annotations

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
