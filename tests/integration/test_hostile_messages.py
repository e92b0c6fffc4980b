"""Messages of the wrong shape on a real worker: dead-lettered with the field named, worker up."""

from __future__ import annotations

import json
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import NotRegistered, TimeLimitExceeded
from kombu import Connection

import hexa
from hexa._dead_letters import DeadLetter, DeadLetterStore
from tests.conftest import StartWorker

pytestmark = pytest.mark.integration

CHAOS = Path(__file__).parents[1] / "chaos" / "projects" / "chaos"
SYNC_PROBE = Path(__file__).parent / "projects" / "sync_probe"


def v2(task_id: str, **headers: Any) -> dict[str, Any]:
    """A protocol-2 `chaos.echo` message with some headers replaced."""
    return {
        "body": json.dumps([[task_id], {}, {}]).encode(),
        "headers": {"lang": "py", "task": "chaos.echo", "id": task_id, "retries": 0, **headers},
    }


#: Each of these stopped the worker ("Unrecoverable error"), jammed or dropped a message.
HOSTILE = {
    "timelimit [10, 'x']": {"timelimit": [10, "x"]},
    "timelimit ['a', {'b': 1}]": {"timelimit": ["a", {"b": 1}]},
    "timelimit of three": {"timelimit": [1, 2, 3]},
    "eta Celery cannot schedule": {"eta": "0001-01-01T00:00:00+14:00"},
}


def publish_raw(url: str, queue: str, messages: list[dict[str, Any]]) -> None:
    with Connection(url) as conn:
        producer = conn.Producer()
        for message in messages:
            producer.publish(
                exchange="",
                routing_key=queue,
                content_type="application/json",
                content_encoding="utf-8",
                **message,
            )


def wait_dead(settings: hexa.Settings, count: int, timeout: float = 30.0) -> list[DeadLetter]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        letters = DeadLetterStore(settings).letters()
        if len(letters) >= count:
            return letters
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} dead letters after {timeout}s")


class TestMalformedFields:
    def test_every_hostile_message_is_dead_lettered_and_the_next_one_runs(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(CHAOS), real_env)
        ids = {case: str(uuid.uuid4()) for case in HOSTILE}
        bad = [v2(ids[case], **headers) for case, headers in HOSTILE.items()]
        publish_raw(real_env["RABBITMQ_URL"], real_env["HEXA_DEFAULT_QUEUE"], bad)
        after = plain_client.send_task("chaos.echo", args=["still running"])
        assert after.get(timeout=30) == "still running"
        letters = wait_dead(hexa.Settings.from_env(environ=real_env), len(HOSTILE))
        reasons = {letter.id: letter.reason for letter in letters}
        assert set(reasons) == set(ids.values())
        for case in ("timelimit [10, 'x']", "timelimit ['a', {'b': 1}]", "timelimit of three"):
            assert "malformed task message: header 'timelimit'" in reasons[ids[case]], case
        assert "header 'eta'" in reasons[ids["eta Celery cannot schedule"]]
        assert worker.proc.poll() is None
        ran = {event["task_id"] for event in worker.events("task.succeeded")}
        assert not ran & set(reasons)  # refused before running, not after

    def test_a_waiting_caller_gets_the_failure(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        start_worker(project(CHAOS), real_env)
        task_id = str(uuid.uuid4())
        waiting = plain_client.AsyncResult(task_id)
        publish_raw(
            real_env["RABBITMQ_URL"],
            real_env["HEXA_DEFAULT_QUEUE"],
            [v2(task_id, timelimit=[10, "x"])],
        )
        with pytest.raises(Exception, match="header 'timelimit'"):
            waiting.get(timeout=30)


def peak_memory(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def zlib_bomb(size: int) -> bytes:
    packer, chunk = zlib.compressobj(9), bytes(1024 * 1024)
    return b"".join([*(packer.compress(chunk) for _ in range(size // len(chunk))), packer.flush()])


class TestCompressionBomb:
    def test_a_bomb_is_dead_lettered_without_being_inflated_in_the_worker(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        env = {**real_env, "HEXA_MAX_MESSAGE_SIZE": str(8 * 1024 * 1024)}
        worker = start_worker(project(CHAOS), env)
        before = peak_memory(worker.proc.pid)
        task_id = str(uuid.uuid4())
        bomb = zlib_bomb(200 * 1024 * 1024)  # 200 MiB of zeros in about 200 KB
        message = v2(task_id, compression="zlib")
        publish_raw(env["RABBITMQ_URL"], env["HEXA_DEFAULT_QUEUE"], [{**message, "body": bomb}])
        [letter] = wait_dead(hexa.Settings.from_env(environ=env), 1)
        assert letter.id == task_id
        assert "inflates past 8,388,608 bytes (HEXA_MAX_MESSAGE_SIZE)" in letter.reason
        assert letter.raw_body() == bomb  # kept compressed, as it came
        assert plain_client.send_task("chaos.echo", args=[1]).get(timeout=30) == 1
        grown = peak_memory(worker.proc.pid) - before
        assert grown < 100 * 1024 * 1024, f"the worker grew by {grown:,} bytes"


class TestProtocolOne:
    def test_unknown_task_in_protocol_1_names_the_task_and_stores_the_failure(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        start_worker(project(CHAOS), real_env)
        plain_client.conf.task_protocol = 1  # an older Celery client, celery-node
        sent = plain_client.send_task("nobody.knows", args=[1])
        with pytest.raises(NotRegistered):
            sent.get(timeout=30)  # before: the caller waited forever
        [letter] = wait_dead(hexa.Settings.from_env(environ=real_env), 1)
        assert letter.id == sent.id
        assert letter.task == "nobody.knows"
        assert "unknown task 'nobody.knows'" in letter.reason  # before: 'unknown task None'

    def test_a_malformed_protocol_1_message_names_its_task_and_id(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        start_worker(project(CHAOS), real_env)
        task_id = str(uuid.uuid4())
        body = {"task": "chaos.echo", "id": task_id, "args": 5, "kwargs": {}}
        message = {"body": json.dumps(body).encode(), "headers": {}}
        publish_raw(real_env["RABBITMQ_URL"], real_env["HEXA_DEFAULT_QUEUE"], [message])
        [letter] = wait_dead(hexa.Settings.from_env(environ=real_env), 1)
        assert (letter.id, letter.task) == (task_id, "chaos.echo")
        assert "body field 'args' must be a list" in letter.reason


class TestHardTimeLimit:
    def test_a_sync_task_killed_at_its_hard_limit_is_named_and_dead_lettered(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(CHAOS, SYNC_PROBE), real_env)
        sent = plain_client.send_task("sync_probe.stubborn", args=[30])
        with pytest.raises(TimeLimitExceeded):
            sent.get(timeout=30)
        failed = worker.wait_for("task.failed")[0]
        assert (failed["task_id"], failed["task"]) == (sent.id, "sync_probe.stubborn")
        [letter] = wait_dead(hexa.Settings.from_env(environ=real_env), 1)
        assert (letter.id, letter.task) == (sent.id, "sync_probe.stubborn")
        assert "TimeLimitExceeded" in letter.reason
        assert "[[30], {}" in letter.body  # replayable with its arguments
        assert plain_client.send_task("chaos.echo", args=[1]).get(timeout=30) == 1


class TestPoolsWithoutTimeLimits:
    @pytest.mark.parametrize("pool", ["threads", "solo", "asyncio"])
    def test_a_pool_that_cannot_stop_a_sync_task_refuses_to_start_naming_it(
        self,
        pool: str,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
    ) -> None:
        worker = start_worker(project(SYNC_PROBE), real_env, [f"--pool={pool}"], ready=False)
        assert worker.proc.wait(60) == 2
        output = worker.output()
        assert f"--pool {pool} cannot stop a running sync task" in output
        assert "sync_probe.overrun, sync_probe.stubborn" in output
        assert "prefork" in output  # and the way out
        assert not worker.events("worker.ready")
