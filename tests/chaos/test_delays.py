"""Delays longer than RabbitMQ's consumer_timeout, on a node of our own with a 10 s timeout.

Issue 13 / issue 11 item 2: a countdown past the broker's `consumer_timeout` used to be held
unacknowledged by the worker until the broker closed its channel (PRECONDITION_FAILED) and
the worker process exited. Now each such message waits in the broker's delay queues and
reaches the worker when it is due: every task runs on time, the worker stays up, and no
channel error appears. A plain Celery client's held ETA message on the same node shows the
fault is real there: it still closes the channel after the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery

import hexa
from hexa._app import HexaCelery
from tests.chaos.conftest import CHAOS_PROJECT, Row, report
from tests.chaos.services import OwnRabbitMQ
from tests.conftest import StartWorker
from tests.support.services import unique

pytestmark = pytest.mark.chaos

PROBE = Path(__file__).parents[1] / "integration" / "projects" / "delivery_probe"
#: The node's `consumer_timeout`: a held message closes its channel after this long.
CONSUMER_TIMEOUT = 10.0
#: Countdowns from 1.5x to 3x the timeout.
COUNTDOWNS = [15.0 + 0.75 * i for i in range(21)]
_CHANNEL_ERRORS = ("PRECONDITION_FAILED", "delivery acknowledgement", "timed out")


@pytest.fixture(scope="module")
def short_timeout_rabbitmq() -> Iterator[OwnRabbitMQ]:
    node = OwnRabbitMQ(consumer_timeout=CONSUMER_TIMEOUT)
    node.start()
    yield node
    node.stop()


@hexa.remote_task("delivery_probe.ran_at")
def ran_at(key: str) -> float: ...


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_countdowns_past_the_consumer_timeout_run_on_time_and_the_worker_stays_up(
    queue_type: str,
    short_timeout_rabbitmq: OwnRabbitMQ,
    project: Callable[..., Path],
    start_worker: StartWorker,
    redis_url: str,
    client: Callable[[dict[str, str]], HexaCelery],
) -> None:
    env = {
        "RABBITMQ_URL": short_timeout_rabbitmq.url(),
        "REDIS_URL": redis_url,
        "HEXA_DEFAULT_QUEUE": unique("hexa-chaos-delays"),
        "HEXA_QUEUE_TYPE": queue_type,
        "CHAOS_RECORD_URL": redis_url,
    }
    worker = start_worker(project(CHAOS_PROJECT, PROBE), env, ["--concurrency=2"])
    app = client(env)
    previous = hexa.use_app(app)
    try:
        due, results = [], []
        for countdown in COUNTDOWNS:
            due.append(time.time() + countdown)
            results.append(ran_at.with_options(countdown=countdown).send(unique("k")))
        ran = [result.get(timeout=COUNTDOWNS[-1] + 30) for result in results]
    finally:
        hexa.use_app(previous)
    lateness = [started - when for started, when in zip(ran, due, strict=True)]
    assert min(lateness) >= -0.05  # never early (the worker waits the last second)
    assert max(lateness) <= 2.0  # and on time
    assert worker.proc.poll() is None
    errors = [line for line in worker.lines if any(e in line for e in _CHANNEL_ERRORS)]
    assert not errors, errors
    held_for = held_message_closes_the_channel(env, worker)
    report(
        Row(
            f"countdowns 15-30 s, consumer_timeout 10 s ({queue_type})",
            len(COUNTDOWNS),
            len(ran),
            len(COUNTDOWNS) - len(ran),
            0,
            None,
            f"late by {min(lateness):.2f}-{max(lateness):.2f} s; worker up, no channel "
            f"error; a held ETA closed the channel after {held_for:.0f} s",
        )
    )


def held_message_closes_the_channel(env: dict[str, str], worker: object) -> float:
    """The control: a plain Celery client's ETA goes straight to the queue, the worker holds
    it, and the node closes the worker's channel once the consumer timeout passes."""
    plain = Celery("hexa_worker", broker=env["RABBITMQ_URL"])
    plain.conf.task_default_queue = env["HEXA_DEFAULT_QUEUE"]
    if env["HEXA_QUEUE_TYPE"] == "quorum":
        plain.conf.task_default_queue_type = "quorum"
        plain.conf.task_create_missing_queue_type = "quorum"
    started = time.monotonic()
    try:
        plain.send_task("delivery_probe.ran_at", args=["held"], countdown=3 * CONSUMER_TIMEOUT)
    finally:
        plain.close()
    lines: list[str] = worker.lines  # type: ignore[attr-defined]
    deadline = started + 6 * CONSUMER_TIMEOUT
    while time.monotonic() < deadline:
        if any(any(e in line for e in _CHANNEL_ERRORS) for line in lines):
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError("a held ETA message did not close the channel: the timeout is not set")
