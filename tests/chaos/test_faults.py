"""Fault scenarios: a killed worker, a restarting broker, a missing result store.

Run them with `make chaos`; the table at the end shows sent, completed, lost and duplicated
tasks per scenario, and how long the system took to do work again after the fault.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hexa
from hexa._app import HexaCelery
from hexa._options import SendOptions
from hexa._publisher import publish
from tests.chaos.conftest import CHAOS_PROJECT, Records, Row, report
from tests.chaos.services import OwnRabbitMQ, OwnRedis
from tests.conftest import StartWorker
from tests.support.services import unique
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.chaos


def send(app: HexaCelery, name: str, *args: Any) -> hexa.TaskResult[Any]:
    return publish(name, args, {}, SendOptions(), app=app)


class TestWorkerCrash:
    def test_sigkill_of_the_worker_group_after_40_tasks_loses_none_of_200(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        redis_url: str,
        records: Records,
        client: Callable[[dict[str, str]], HexaCelery],
    ) -> None:
        env = {**real_env, "CHAOS_RECORD_URL": redis_url}
        root = project(CHAOS_PROJECT)
        worker = start_worker(root, env, ["--concurrency=2"])
        app = client(env)
        sent = list(range(200))
        for index in sent:
            send(app, "chaos.record", records.key, index)
        records.wait(lambda runs: len(runs) >= 40, 60, "40 tasks run")
        worker.kill(signal.SIGKILL)
        worker.proc.wait(10)
        killed_at = time.monotonic()
        time.sleep(0.3)  # let writes the killed processes had in flight land first
        before = records.total()
        start_worker(root, env, ["--concurrency=2"])
        back = records.wait(lambda runs: sum(runs.values()) > before, 60, "a run after the kill")
        records.wait(lambda runs: len(runs) == 200, 90, "all 200 indices")
        row = records.row("worker SIGKILL (process group)", sent, back - killed_at, "new worker")
        assert row.lost == 0
        assert row.completed == 200


class TestBrokerRestart:
    def test_every_confirmed_send_runs_across_stop_app_and_start_app(
        self,
        own_rabbitmq: OwnRabbitMQ,
        redis_url: str,
        project: Callable[..., Path],
        start_worker: StartWorker,
        records: Records,
        client: Callable[[dict[str, str]], HexaCelery],
    ) -> None:
        env = {
            "RABBITMQ_URL": own_rabbitmq.url(),
            "REDIS_URL": redis_url,
            "HEXA_DEFAULT_QUEUE": unique("chaos-broker"),
            "CHAOS_RECORD_URL": redis_url,
        }
        worker = start_worker(project(CHAOS_PROJECT), env)
        app = client(env)
        returned: list[int] = []
        refused: list[str] = []

        def publisher() -> None:
            for index in range(500):
                try:
                    send(app, "chaos.record", records.key, index, 0.002)
                except hexa.PublishError as error:
                    refused.append(str(error))
                else:
                    returned.append(index)

        thread = threading.Thread(target=publisher)
        thread.start()
        while len(returned) < 100 and thread.is_alive():
            time.sleep(0.01)
        own_rabbitmq.stop_app()
        time.sleep(2)
        before = records.total()
        own_rabbitmq.start_app()
        up_at = time.monotonic()
        thread.join(120)
        assert not thread.is_alive(), "a send() hung"
        back = records.wait(lambda runs: sum(runs.values()) > before, 60, "a run after start_app")
        records.wait(lambda runs: set(returned) <= runs.keys(), 90, "every returned send run")
        row = records.row(
            "RabbitMQ stop_app/start_app", returned, back - up_at, f"{len(refused)} send() raised"
        )
        assert row.lost == 0
        assert worker.proc.poll() is None  # the same worker reconnected by itself
        assert worker.events("worker.ready")  # and never needed a restart
        assert len(returned) + len(refused) == 500

    def test_unconfirmable_publish_raises_a_clear_error_within_its_timeout(
        self,
        own_rabbitmq: OwnRabbitMQ,
        redis_url: str,
        client: Callable[[dict[str, str]], HexaCelery],
    ) -> None:
        env = {
            "RABBITMQ_URL": own_rabbitmq.url(),
            "REDIS_URL": redis_url,
            "HEXA_DEFAULT_QUEUE": unique("chaos-blocked"),
            "HEXA_PUBLISH_TIMEOUT": "3",
        }
        app = client(env)
        send(app, "chaos.echo", "before")  # connected, confirmed
        own_rabbitmq.ctl("set_vm_memory_high_watermark", "0")  # blocks every publisher
        started = time.monotonic()
        try:
            with pytest.raises(hexa.PublishError) as raised:
                send(app, "chaos.echo", "blocked")
        finally:
            own_rabbitmq.ctl("set_vm_memory_high_watermark", "0.4")
        elapsed = time.monotonic() - started
        message = str(raised.value)
        assert "chaos.echo" in message
        assert f"127.0.0.1:{own_rabbitmq.port}" in message
        assert "did not confirm the message within 3s" in message
        assert elapsed < 3 + 15, f"took {elapsed:.1f}s"
        report(
            Row(
                "publish while RabbitMQ blocks", 0, 0, 0, 0, None, f"PublishError in {elapsed:.1f}s"
            )
        )


def wait_outcomes(worker: WorkerProcess, ids: list[str], timeout: float = 60) -> dict[str, str]:
    """The `task.succeeded`/`task.failed` event of each task id, once every one has one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ends = {
            e["task_id"]: e["event"]
            for e in worker.events()
            if e.get("event") in ("task.succeeded", "task.failed") and "task_id" in e
        }
        if set(ids) <= ends.keys():
            return {task_id: ends[task_id] for task_id in ids}
        time.sleep(0.2)
    missing = [task_id for task_id in ids if task_id not in ends]
    raise AssertionError(f"{len(missing)} task(s) ended with no task.* event: {missing[:3]}")


def assert_json_stderr(worker: WorkerProcess) -> None:
    """Every line the worker wrote to stderr parses as JSON (HEXA_LOG_FORMAT=json)."""
    assert worker.stderr_lines
    for line in worker.stderr_lines:
        try:
            json.loads(line)
        except ValueError:
            raise AssertionError(f"not JSON on stderr: {line[:200]!r}") from None


class TestResultBackendDown:
    def test_tasks_run_without_redis_and_get_names_the_backend(
        self,
        own_redis: OwnRedis,
        real_env: dict[str, str],
        redis_url: str,
        project: Callable[..., Path],
        start_worker: StartWorker,
        records: Records,
        client: Callable[[dict[str, str]], HexaCelery],
    ) -> None:
        env = {**real_env, "REDIS_URL": own_redis.url(), "CHAOS_RECORD_URL": redis_url}
        worker = start_worker(project(CHAOS_PROJECT), env, ["--concurrency=2"])
        app = client(env)
        # Results stay referenced until Redis is back: Celery's AsyncResult.__del__
        # unsubscribes from Redis, and would raise while it is down.
        held = [send(app, "chaos.echo", "up")]
        assert held[0].get(timeout=20) == "up"
        own_redis.stop()
        try:
            sent = list(range(20))
            held += [send(app, "chaos.record", records.key, index, 0.0) for index in sent]
            failing = [send(app, "chaos.broken", index) for index in range(2)]
            held += failing
            records.wait(lambda runs: len(runs) == 20, 90, "20 runs with Redis down")
            outcomes = wait_outcomes(worker, [result.id for result in held[1:]])
            held.append(send(app, "chaos.echo", "down"))
            started = time.monotonic()
            with pytest.raises(hexa.ResultBackendError) as raised:
                held[-1].get(timeout=10)
            failed_in = time.monotonic() - started
        finally:
            own_redis.start()
        up_at = time.monotonic()
        assert send(app, "chaos.echo", "again").get(timeout=30) == "again"
        recovery = time.monotonic() - up_at
        for result in held:  # forget them while Redis is up (see above)
            backend: Any = result.celery_result.backend
            backend.remove_pending_result(result.celery_result)
        message = str(raised.value)
        assert f"redis://:**@127.0.0.1:{own_redis.port}/0" in message
        assert own_redis.password not in message
        assert failed_in < 15, f"get() took {failed_in:.1f}s to fail"
        assert worker.proc.poll() is None
        assert set(outcomes.values()) == {"task.succeeded", "task.failed"}
        assert [outcomes[result.id] for result in failing] == ["task.failed"] * 2
        assert worker.events("result.not_stored")
        assert_json_stderr(worker)
        row = records.row(
            "Redis (results) down", sent, recovery, f"get() raised in {failed_in:.1f}s"
        )
        assert row.lost == 0
