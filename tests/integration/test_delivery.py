"""Quorum queues, the delivery limit and broker-side delays: the real RabbitMQ, real workers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection, Queue

import hexa
from hexa import ConfigurationError, DeliveryLimitError
from hexa._app import build_app
from hexa._dead_letters import DeadLetterStore
from hexa._delays import DELIVERY_EXCHANGE
from tests.conftest import StartWorker
from tests.integration.test_dead_letters import hexa_cli
from tests.support.services import unique
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

PROBE = Path(__file__).parent / "projects" / "delivery_probe"
QUEUE_TYPES = ["classic", "quorum"]


@pytest.fixture(params=QUEUE_TYPES)
def typed_env(request: pytest.FixtureRequest, real_env: dict[str, str]) -> dict[str, str]:
    """The test's own queue, as a classic or a quorum queue."""
    return {**real_env, "HEXA_QUEUE_TYPE": request.param}


@pytest.fixture
def client(typed_env: dict[str, str]) -> Iterator[hexa.HexaCelery]:
    app = build_app(hexa.Settings.from_env(environ=typed_env))
    previous = hexa.use_app(app)
    yield app
    hexa.use_app(previous)
    app.close()


@hexa.remote_task("delivery_probe.ran_at")
def ran_at(key: str) -> float: ...


@hexa.remote_task("delivery_probe.neighbour")
def neighbour(key: str, index: int) -> int: ...


@hexa.remote_task("delivery_probe.kills_its_process")
def kills_its_process(key: str) -> bool: ...


@hexa.remote_task("delivery_probe.retried_in_an_hour")
def retried_in_an_hour(key: str) -> str: ...


@pytest.fixture
def root(project: Callable[..., Path]) -> Path:
    """A project with the example modules and `delivery_probe`."""
    return project(PROBE)


@pytest.fixture
def runs(redis_url: str) -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(redis_url)
    key = unique("hexa-delivery")
    yield client, key
    client.delete(*client.keys(key + "*") or [key])
    client.close()


def queue_is(url: str, name: str, queue_type: str) -> bool:
    """Whether `name` exists as a `queue_type` queue: redeclaring it alike succeeds."""
    arguments = {"x-queue-type": "quorum"} if queue_type == "quorum" else None
    with Connection(url) as conn:
        try:
            Queue(name, routing_key=name, queue_arguments=arguments).bind(conn.channel()).declare()
        except Exception:
            return False
    return True


def depth(url: str, name: str) -> int:
    """Messages ready in queue `name` (0 when it does not exist)."""
    with Connection(url) as conn:
        try:
            return int(conn.channel().queue_declare(name, passive=True).message_count)
        except Exception:
            return 0


class TestQueueTypes:
    def test_the_worker_declares_its_queues_of_the_chosen_type_and_consumes_from_them(
        self,
        root: Path,
        start_worker: StartWorker,
        typed_env: dict[str, str],
        client: hexa.HexaCelery,
        runs: tuple[redis.Redis, str],
        rabbitmq_url: str,
    ) -> None:
        queue, queue_type = typed_env["HEXA_DEFAULT_QUEUE"], typed_env["HEXA_QUEUE_TYPE"]
        worker = start_worker(root, typed_env)
        results = [neighbour.send(runs[1], i) for i in range(20)]
        assert [r.get(timeout=30) for r in results] == list(range(20))
        assert queue_is(rabbitmq_url, queue, queue_type)
        assert queue_is(rabbitmq_url, queue + ".dead", queue_type)
        other = "classic" if queue_type == "quorum" else "quorum"
        assert not queue_is(rabbitmq_url, queue, other)
        if queue_type == "quorum":  # quorum queues have no global QoS: per-consumer prefetch
            assert worker.events("Global QoS is disabled. Prefetch count is now static.")

    def test_a_queue_of_the_other_type_stops_the_worker_and_the_client_with_the_fix(
        self,
        root: Path,
        start_worker: StartWorker,
        real_env: dict[str, str],
        rabbitmq_url: str,
    ) -> None:
        queue = real_env["HEXA_DEFAULT_QUEUE"]
        with Connection(rabbitmq_url) as conn:  # an existing classic queue of that name
            Queue(queue, routing_key=queue).bind(conn.channel()).declare()
        env = {**real_env, "HEXA_QUEUE_TYPE": "quorum"}
        worker = start_worker(root, env, ready=False)
        assert worker.proc.wait(60) != 0
        assert f"queue '{queue}' exists on the broker as a classic queue" in worker.output()
        assert "HEXA_QUEUE_TYPE=classic" in worker.output()

        app = build_app(hexa.Settings.from_env(environ=env))
        previous = hexa.use_app(app)
        started = time.monotonic()
        try:
            with pytest.raises(ConfigurationError, match=r"as a classic queue.*delete_queue"):
                neighbour.send("k", 1)
        finally:
            hexa.use_app(previous)
            app.close()
        assert time.monotonic() - started < 5  # no retrying until the publish timeout

        with Connection(rabbitmq_url) as conn:  # and a classic `.dead` queue
            Queue(queue + ".dead", routing_key=queue + ".dead").bind(conn.channel()).declare()
        listed = hexa_cli(root, env, "dead", "list")
        assert listed.returncode == 2
        assert f"queue '{queue}.dead' exists on the broker as a classic queue" in listed.stderr


class TestDeliveryLimit:
    """Issue 11 item 3: a task that kills its own process is dead-lettered after the limit."""

    def test_a_task_that_kills_its_process_is_dead_lettered_while_its_neighbours_run(
        self,
        root: Path,
        start_worker: StartWorker,
        typed_env: dict[str, str],
        client: hexa.HexaCelery,
        runs: tuple[redis.Redis, str],
    ) -> None:
        store, key = runs
        env = {**typed_env, "HEXA_DELIVERY_LIMIT": "3"}
        worker = start_worker(root, env, ["--concurrency=2", "--pool=prefork"])
        poison = kills_its_process.send(key + ":poison")
        neighbours = [neighbour.send(key + ":ok", i) for i in range(30)]
        assert sorted(r.get(timeout=60) for r in neighbours) == list(range(30))
        with pytest.raises(DeliveryLimitError, match="delivered 3 times without finishing"):
            poison.get(timeout=90)
        assert store.llen(key + ":poison") == 3  # ran 3 times, then never again
        assert worker.proc.poll() is None  # the worker itself kept serving
        event = worker.wait_for("message.dead_lettered")[0]
        assert event["id"] == poison.id
        [letter] = DeadLetterStore(hexa.Settings.from_env(environ=env)).letters()
        assert letter.id == poison.id
        assert letter.queue == env["HEXA_DEFAULT_QUEUE"]
        assert letter.reason.startswith("delivered 3 times without finishing")
        listed = hexa_cli(root, env, "dead", "list")
        assert poison.id in listed.stdout
        assert "delivered 3 times without finishing" in listed.stdout
        time.sleep(2)
        assert store.llen(key + ":poison") == 3


def held_by(worker: WorkerProcess, client: hexa.HexaCelery, timeout: float) -> list[Any]:
    """The messages `worker` (only it: other tests' workers share the broker) holds for later."""
    name = worker.wait_for("worker.ready")[0]["hostname"]
    scheduled = client.control.inspect(destination=[name], timeout=timeout).scheduled()
    assert scheduled is not None, f"{name} did not answer"
    assert name in scheduled, f"{name} did not answer"
    held: list[Any] = scheduled[name]
    return held


class TestDelaysOnTheBroker:
    """Issue 13 / issue 11 item 2: a delayed message waits on RabbitMQ, not in a worker."""

    def test_a_countdown_waits_in_a_delay_queue_and_runs_on_time(
        self,
        root: Path,
        start_worker: StartWorker,
        typed_env: dict[str, str],
        client: hexa.HexaCelery,
        runs: tuple[redis.Redis, str],
        rabbitmq_url: str,
    ) -> None:
        worker = start_worker(root, typed_env)
        queue = typed_env["HEXA_DEFAULT_QUEUE"]
        sent_at = time.time()
        result = ran_at.with_options(countdown=8).send(runs[1])
        # ~7.99 s when routed: 7 s = 4 + 2 + 1 s (levels 2, 1, 0); the worker waits the rest
        waiting = [depth(rabbitmq_url, f"celery_delayed_{level}") for level in (0, 1, 2)]
        assert sum(waiting) >= 1
        assert depth(rabbitmq_url, queue) == 0
        assert held_by(worker, client, timeout=1) == []  # the worker does not hold it
        assert time.time() - sent_at < 7  # all of that while it waited
        started = result.get(timeout=30)
        assert 7.5 <= started - sent_at <= 10.0

    def test_a_retry_an_hour_later_waits_on_the_broker_not_in_the_worker(
        self,
        root: Path,
        start_worker: StartWorker,
        typed_env: dict[str, str],
        client: hexa.HexaCelery,
        runs: tuple[redis.Redis, str],
        rabbitmq_url: str,
    ) -> None:
        worker = start_worker(root, typed_env)
        store, key = runs
        result = retried_in_an_hour.send(key)
        retry = worker.wait_for("task.retry")[0]
        assert retry["delay"] == pytest.approx(3600, abs=5)
        time.sleep(1)
        assert held_by(worker, client, timeout=2) == []  # not held: nothing scheduled
        assert depth(rabbitmq_url, typed_env["HEXA_DEFAULT_QUEUE"]) == 0  # nor in its queue
        assert depth(rabbitmq_url, "celery_delayed_11") >= 1  # waiting 2**11 s, then the rest
        assert result.status == "RETRY"
        assert store.llen(key) == 1
        assert worker.proc.poll() is None

    def test_the_queue_is_bound_to_the_delivery_exchange_by_its_own_name(
        self, typed_env: dict[str, str], client: hexa.HexaCelery, rabbitmq_url: str
    ) -> None:
        """A message the last delay level lets out reaches the queue, and only that one."""
        queue = typed_env["HEXA_DEFAULT_QUEUE"]
        other = queue + ".other"

        @hexa.module_task(module="probe_delays")
        def nothing() -> int:
            return 1

        nothing.with_options(countdown=3).send()  # declares the topology and the binding
        with Connection(rabbitmq_url) as conn:
            producer = conn.Producer()
            bits = "0." * 28
            producer.publish("x", exchange=DELIVERY_EXCHANGE, routing_key=bits + other)
            time.sleep(3.5)  # the 3 s message has arrived, the other queue's has not
            assert depth(rabbitmq_url, queue) == 1
            producer.publish("y", exchange=DELIVERY_EXCHANGE, routing_key=bits + queue)
            time.sleep(0.3)
            assert depth(rabbitmq_url, queue) == 2
