"""Pipelined publisher confirms and `hexa.batch()` on the real RabbitMQ.

Nothing consumes the test's queue here, so what the broker holds can be counted: `.send()`
and `batch()` return only once every message is there, whatever the callers do at once.
"""

from __future__ import annotations

import os
import threading

import pytest
from celery import Celery
from kombu import Connection

import hexa
from hexa import TaskResult, module_task
from hexa._batch import current_batch
from hexa._publisher import publisher

pytestmark = pytest.mark.integration


@module_task(module="confirms")
def add(a: int, b: int) -> int:
    return a + b


def queued(app: Celery, queue: str) -> int:
    with Connection(app.conf.broker_url) as conn:
        return int(conn.default_channel.queue_declare(queue, passive=True).message_count)


@pytest.fixture
def client(hexa_client: Celery, queue: str) -> Celery:
    add.send(0, 0)  # the queue exists (and holds one message) before each test counts
    return hexa_client


class TestBatch:
    def test_returns_once_the_broker_holds_every_message(self, client: Celery, queue: str) -> None:
        with hexa.batch():
            results = [add.send(i, 1) for i in range(300)]
        assert queued(client, queue) == 301
        assert all(isinstance(r, TaskResult) for r in results)
        assert len({r.id for r in results}) == 300

    def test_nested_blocks_confirm_with_the_outer_one(self, client: Celery, queue: str) -> None:
        with hexa.batch():
            add.send(1, 1)
            outer = current_batch()
            with hexa.batch():
                add.send(2, 2)
                assert current_batch() is outer
            assert outer is not None
            assert len(outer.pending) == 2  # nothing confirmed yet: the outer block does it
        assert outer.pending == []
        assert current_batch() is None
        assert queued(client, queue) == 3

    def test_a_block_that_raises_still_confirms_what_it_sent(
        self, client: Celery, queue: str
    ) -> None:
        def send_then_fail() -> None:
            with hexa.batch():
                add.send(1, 1)
                raise KeyError("caller's own error")

        with pytest.raises(KeyError):
            send_then_fail()
        assert queued(client, queue) == 2


class TestConcurrentCallers:
    def test_sixteen_threads_share_one_connection(self, client: Celery, queue: str) -> None:
        ids: list[str] = []
        start = threading.Barrier(16)

        def run() -> None:
            start.wait()
            ids.extend(add.send(i, i).id for i in range(40))

        threads = [threading.Thread(target=run) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(ids)) == 640
        assert queued(client, queue) == 641

    def test_a_lost_connection_is_replaced_and_the_message_sent(
        self, client: Celery, queue: str
    ) -> None:
        channel = publisher(client).confirm_channel()
        conn = channel._conn
        assert conn is not None
        conn.connection.sock.close()  # the broker went away under the publisher
        add.send(1, 1)
        assert channel._conn is not None
        assert channel._conn is not conn
        assert queued(client, queue) == 2

    def test_a_forked_child_publishes_on_its_own_connection(
        self, client: Celery, queue: str
    ) -> None:
        parent_channel = publisher(client).confirm_channel()
        pid = os.fork()
        if pid == 0:  # the child: never the parent's socket
            try:
                add.send(2, 2)
                child_channel = publisher(client).confirm_channel()
                os._exit(0 if child_channel is not parent_channel else 3)
            except BaseException:
                os._exit(4)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        add.send(3, 3)  # the parent's connection still works
        assert queued(client, queue) == 3
