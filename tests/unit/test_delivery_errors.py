"""A broker or result store that is not there gives errors that name it, never a password."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import hexa
from hexa._app import HexaCelery, build_app
from hexa._options import SendOptions
from hexa._publisher import publish


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def nowhere() -> Iterator[HexaCelery]:
    """An app whose broker and result store listen nowhere; passwords are in both URLs."""
    app = build_app(
        hexa.Settings.from_env(
            environ={
                "RABBITMQ_URL": f"amqp://me:broker-pw@127.0.0.1:{closed_port()}//",
                "REDIS_URL": f"redis://:backend-pw@127.0.0.1:{closed_port()}/0",
                "HEXA_PUBLISH_TIMEOUT": "1",
            }
        )
    )
    yield app
    app.close()


class TestPublishError:
    def test_unreachable_broker_raises_publish_error_naming_it_masked(
        self, nowhere: HexaCelery
    ) -> None:
        with pytest.raises(hexa.PublishError) as raised:
            publish("a.task", [1], {}, SendOptions(), app=nowhere)
        text = str(raised.value)
        assert "a.task" in text
        assert "amqp://me:**@127.0.0.1" in text
        assert "within 1s" in text
        assert "broker-pw" not in text
        assert isinstance(raised.value, ConnectionError)

    def test_batch_names_each_message_it_could_not_confirm(self, nowhere: HexaCelery) -> None:
        with pytest.raises(hexa.PublishError) as raised, hexa.batch():
            sent = [publish("a.task", [i], {}, SendOptions(), app=nowhere) for i in range(2)]
        text = str(raised.value)
        assert "did not confirm 2 message(s) within 1s" in text
        assert all(f"a.task {result.id}" in text for result in sent)
        assert "amqp://me:**@127.0.0.1" in text
        assert "broker-pw" not in text


class TestResultBackendError:
    def test_unreachable_result_store_raises_naming_it_masked(self, nowhere: HexaCelery) -> None:
        result = hexa.TaskResult(nowhere.AsyncResult("some-task-id"))
        with pytest.raises(hexa.ResultBackendError) as raised:
            result.get(timeout=5)
        text = str(raised.value)
        assert "some-task-id" in text
        assert "redis://:**@127.0.0.1" in text
        assert "backend-pw" not in text
