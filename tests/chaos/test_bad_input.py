"""Bad messages never stop a worker, and passwords never leave the process."""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection, Queue

import hexa
from hexa._options import SendOptions
from hexa._publisher import publish
from tests.chaos.conftest import CHAOS_PROJECT, Row, report
from tests.chaos.services import OwnRabbitMQ, OwnRedis, free_port
from tests.conftest import StartWorker
from tests.support.services import unique

pytestmark = pytest.mark.chaos

HUGE = 4 * 1024 * 1024
JSON = "application/json"


def task_headers(name: str = "chaos.echo", **extra: Any) -> dict[str, Any]:
    return {"lang": "py", "task": name, "id": str(uuid.uuid4()), "retries": 0, **extra}


def message(body: bytes, headers: dict[str, Any], content_type: str = JSON) -> dict[str, Any]:
    encoding = "utf-8" if content_type == JSON and body.isascii() else "binary"
    return {
        "body": body,
        "headers": headers,
        "content_type": content_type,
        "content_encoding": encoding,
    }


def bad_messages() -> dict[str, dict[str, Any]]:
    """Malformed messages as a buggy or hostile publisher would send them, by what is wrong."""
    task_body = b'[["x"], {}, {}]'
    return {
        "garbage body": message(b"\x00\xff{not json", task_headers()),
        "pickle content type": message(
            pickle.dumps(((1,), {}, {})), task_headers(), "application/x-python-serialize"
        ),
        "missing headers": message(task_body, {}),
        "task header without id": message(task_body, {"task": "chaos.echo"}),
        "huge undecodable payload": message(random.Random(6).randbytes(HUGE), task_headers()),
        "unknown task": message(task_body, task_headers("nobody.knows")),
    }


def inject(url: str, queue: str, messages: dict[str, dict[str, Any]]) -> None:
    with Connection(url) as conn:
        producer = conn.Producer()
        for message in messages.values():
            producer.publish(exchange="", routing_key=queue, **message)


def send(app: Any, name: str, *args: Any) -> hexa.TaskResult[Any]:
    return publish(name, args, {}, SendOptions(), app=app)


def wait_dead(settings: hexa.Settings, count: int, timeout: float = 30) -> list[hexa.DeadLetter]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        letters = hexa.DeadLetterStore(settings).letters()
        if len(letters) >= count:
            return letters
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} dead letters after {timeout}s")


class TestMalformedMessages:
    def test_worker_keeps_serving_and_dead_letters_every_bad_message(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        client: Callable[[dict[str, str]], Any],
    ) -> None:
        worker = start_worker(project(CHAOS_PROJECT), real_env)
        app = client(real_env)
        first = [send(app, "chaos.echo", i) for i in range(10)]
        bad = bad_messages()
        injected_at = time.monotonic()
        inject(real_env["RABBITMQ_URL"], real_env["HEXA_DEFAULT_QUEUE"], bad)
        then = [send(app, "chaos.echo", i) for i in range(10, 20)]
        assert [r.get(timeout=30) for r in first + then] == list(range(20))
        recovery = time.monotonic() - injected_at
        letters = wait_dead(hexa.Settings.from_env(environ=real_env), len(bad))
        reasons = [letter.reason for letter in letters]
        assert len(letters) == len(bad), reasons
        assert any("ContentDisallowed" in r for r in reasons), reasons
        assert any("unknown task 'nobody.knows'" in r for r in reasons), reasons
        assert any("not a task message" in r for r in reasons), reasons
        assert any("malformed task message" in r for r in reasons), reasons
        assert sum("undecodable" in r for r in reasons) == 2, reasons
        huge = max(letters, key=lambda letter: len(letter.body))
        assert len(huge.raw_body()) == HUGE  # kept byte for byte, replayable
        assert worker.proc.poll() is None
        note = f"{len(bad)} bad -> {len(letters)} dead letters"
        report(Row("malformed messages", 20, 20, 0, 0, recovery, note))


class TestSecrets:
    def test_broker_and_backend_passwords_never_leave_the_process(
        self,
        own_rabbitmq: OwnRabbitMQ,
        own_redis: OwnRedis,
        redis_url: str,
        project: Callable[..., Path],
        start_worker: StartWorker,
        client: Callable[[dict[str, str]], Any],
    ) -> None:
        user, password = unique("hexa-user"), f"Rabbit-Pw-{uuid.uuid4().hex}"
        own_rabbitmq.ctl("add_user", user, password)
        own_rabbitmq.ctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        env = {
            "RABBITMQ_URL": own_rabbitmq.url(user, password),
            "REDIS_URL": own_redis.url(),
            "HEXA_DEFAULT_QUEUE": unique("chaos-secrets"),
            "CHAOS_RECORD_URL": redis_url,
        }
        secrets = (password, own_redis.password)
        try:
            root = project(CHAOS_PROJECT)
            worker = start_worker(root, env, ["--loglevel=DEBUG"])
            app = client(env)
            events = TaskEvents(app)
            ok, failing = send(app, "chaos.echo", "fine"), send(app, "chaos.broken", 1)
            leaking = send(app, "chaos.leaky", 2)
            app.send_task("nobody.knows")
            assert ok.get(timeout=20) == "fine"
            with pytest.raises(ValueError, match="cannot handle 1"):
                failing.get(timeout=20)
            with pytest.raises(ConnectionError, match="cannot reach"):
                leaking.get(timeout=20)
            wait_dead(hexa.Settings.from_env(environ=env), 3)
            leaky_cli = ("status", leaking.id), ("send", "chaos.leaky", "3", "--wait")
            outputs = {
                "worker log": worker.output(),
                "task events": events.stop(),
                **{" ".join(cmd): cli(root, env, *cmd) for cmd in (*CLI_COMMANDS, *leaky_cli)},
                "publish error": cli(root, {**env, **unreachable(user, password)}, *SEND_ONE),
                "result backend": backend_values(own_redis.url()),
            }
        finally:
            own_rabbitmq.ctl("delete_user", user)
        if os.environ.get("CHAOS_SHOW"):
            print(*(f"--- {k}\n{v[-3000:]}" for k, v in outputs.items()), sep="\n")
        for where, text in outputs.items():
            assert text, f"{where}: nothing captured"
            for secret in secrets:
                assert secret not in text, f"a password appears in the {where}"
        assert "**@127.0.0.1" in outputs["worker log"]  # the URLs are shown, masked
        assert "not confirm" in outputs["publish error"]
        assert "cannot reach amqp://" in outputs["worker log"]  # the leaky task did fail
        assert "task-failed" in outputs["task events"]
        assert "task-retried" in outputs["task events"]
        assert "cannot reach" in outputs[f"status {leaking.id}"]
        assert "cannot reach" in outputs["send chaos.leaky 3 --wait"]
        report(
            Row("secrets (real passwords)", 2, 2, 0, 0, None, f"0 leaks in {len(outputs)} outputs")
        )


CLI_COMMANDS = (("tasks",), ("dead", "list"), ("send", "chaos.echo", "7", "--wait"))


class TaskEvents:
    """Celery's task events (what Flower shows), recorded in a thread until `stop()`."""

    def __init__(self, app: Any) -> None:
        app.control.enable_events()  # off until asked for, as Flower asks
        self.seen: list[str] = []
        self.conn = app.connection_for_read()
        self.receiver = app.events.Receiver(self.conn, handlers={"*": self.record})
        self.thread = threading.Thread(target=self.capture, daemon=True)
        self.thread.start()
        time.sleep(1)  # the receiver's queue is bound before tasks run

    def record(self, event: dict[str, Any]) -> None:
        self.seen.append(repr(event))

    def capture(self) -> None:
        with contextlib.suppress(Exception):
            self.receiver.capture(limit=None, timeout=None, wakeup=False)

    def stop(self) -> str:
        time.sleep(1)
        self.receiver.should_stop = True
        self.thread.join(5)
        self.conn.close()
        return "\n".join(self.seen)


SEND_ONE = ("send", "chaos.echo", "1")


def unreachable(user: str, password: str) -> dict[str, str]:
    """A broker URL with the real password on a port where nothing listens."""
    port = free_port()
    return {
        "RABBITMQ_URL": f"amqp://{user}:{password}@127.0.0.1:{port}//",
        "HEXA_PUBLISH_TIMEOUT": "2",
    }


def cli(cwd: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hexa", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr


def backend_values(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        keys = client.keys("celery-task-meta-*")
        return "\n".join(repr(client.get(key)) for key in keys)
    finally:
        client.close()


class TestDeadLetterSize:
    def test_a_body_that_json_escapes_past_the_broker_limit_is_kept_in_base64(
        self,
        own_rabbitmq: OwnRabbitMQ,
        own_redis: OwnRedis,
        project: Callable[..., Path],
        start_worker: StartWorker,
    ) -> None:
        env = {
            "RABBITMQ_URL": own_rabbitmq.url(),
            "REDIS_URL": own_redis.url(),
            "HEXA_DEFAULT_QUEUE": unique("chaos-escaped"),
        }
        body = b"\x01" * (23 * 1024 * 1024)  # valid UTF-8: 6 bytes each as JSON text (138 MB)
        worker = start_worker(project(CHAOS_PROJECT), env)
        inject(env["RABBITMQ_URL"], env["HEXA_DEFAULT_QUEUE"], {"x": message(body, task_headers())})
        [letter] = wait_dead(hexa.Settings.from_env(environ=env), 1, timeout=120)
        assert letter.body_encoding == "base64"
        assert not letter.truncated
        assert letter.raw_body() == body  # whole: replayable
        assert worker.events("message.dead_lettered")
        assert not worker.events("dead_letter.failed")  # before: refused, requeued forever
        report(Row("dead letter of 23 MB escaped bytes", 1, 1, 0, 0, None, "kept whole, base64"))

    def test_a_letter_the_broker_still_refuses_is_kept_as_its_reason(
        self,
        own_rabbitmq: OwnRabbitMQ,
        own_redis: OwnRedis,
        project: Callable[..., Path],
        start_worker: StartWorker,
    ) -> None:
        env = {
            "RABBITMQ_URL": own_rabbitmq.url(),
            "REDIS_URL": own_redis.url(),
            "HEXA_DEFAULT_QUEUE": unique("chaos-refused-letter"),
        }
        big = random.Random(7).randbytes(900 * 1024)  # base64: 1.2 MB as a dead letter
        with Connection(env["RABBITMQ_URL"]) as conn:  # the worker starts later: declare it
            queue = env["HEXA_DEFAULT_QUEUE"]
            Queue(queue, routing_key=queue)(conn.default_channel).declare()
        inject(env["RABBITMQ_URL"], env["HEXA_DEFAULT_QUEUE"], {"x": message(big, task_headers())})
        own_rabbitmq.ctl("eval", "application:set_env(rabbit, max_message_size, 1048576).")
        try:  # channels opened from now on refuse messages above 1 MiB: below hexa's limit
            worker = start_worker(project(CHAOS_PROJECT), env)
            [letter] = wait_dead(hexa.Settings.from_env(environ=env), 1, timeout=60)
        finally:
            own_rabbitmq.ctl("eval", "application:set_env(rabbit, max_message_size, 134217728).")
        assert letter.body == ""
        assert letter.body_size == len(big)
        assert "undecodable message" in letter.reason
        assert "body cut to fit the size limit: 0 of 921,600 bytes kept" in letter.reason
        time.sleep(2)
        assert len(worker.events("dead_letter.failed")) == 0  # not refused and requeued
        report(Row("dead letter above RabbitMQ's limit", 1, 1, 0, 0, None, "reason kept"))
