"""Dead letters on real workers: unknown tasks and final failures are kept and replayable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery
from celery.exceptions import NotRegistered

import hexa
from hexa._app import build_app
from hexa._dead_letters import DeadLetter, DeadLetterStore
from tests.conftest import StartWorker

pytestmark = pytest.mark.integration

CHAOS = Path(__file__).parents[1] / "chaos" / "projects" / "chaos"


def hexa_cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    for key in ("RABBITMQ_URL", "REDIS_URL"):
        if not full.get(key):
            full.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "hexa", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wait_dead(settings: hexa.Settings, count: int, timeout: float = 20.0) -> list[DeadLetter]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        letters = DeadLetterStore(settings).letters()
        if len(letters) >= count:
            return letters
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} dead letters after {timeout}s")


class TestDeadLettersOnRabbitMQ:
    def test_unknown_task_is_dead_lettered_then_replayed_once_a_worker_knows_it(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        root = project()  # the example modules only: no `chaos.echo` yet
        worker = start_worker(root, real_env)
        sent = plain_client.send_task("chaos.echo", args=["hello"])
        with pytest.raises(NotRegistered):
            sent.get(timeout=20)
        event = worker.wait_for("message.dead_lettered")[0]
        assert event["id"] == sent.id
        assert "unknown task 'chaos.echo'" in event["reason"]
        listed = hexa_cli(root, real_env, "dead", "list")
        assert listed.returncode == 0, listed.stderr
        assert sent.id in listed.stdout
        assert "chaos.echo" in listed.stdout
        assert "1 dead letter(s)" in listed.stdout
        worker.stop()

        start_worker(project(CHAOS), real_env)  # the fix is deployed: replay
        replayed = hexa_cli(root, real_env, "dead", "replay", sent.id)
        assert replayed.returncode == 0, replayed.stderr
        assert f"replayed {sent.id}" in replayed.stdout
        assert plain_client.AsyncResult(sent.id).get(timeout=20) == "hello"
        assert "0 dead letter(s)" in hexa_cli(root, real_env, "dead", "list").stdout

    def test_task_that_exhausted_its_retries_is_dead_lettered_with_its_arguments(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        root = project(CHAOS)
        start_worker(root, real_env)
        sent = plain_client.send_task("chaos.broken", args=[41])
        with pytest.raises(ValueError, match="cannot handle 41"):
            sent.get(timeout=20)
        settings = hexa.Settings.from_env(environ=real_env)
        [letter] = wait_dead(settings, 1)
        assert letter.id == sent.id
        assert letter.reason.startswith("failed after 2 attempt(s): ValueError")
        assert "[[41], {}" in letter.body
        assert letter.headers["retries"] == 0

    def test_replay_of_an_unknown_id_fails_and_purge_empties_the_queue(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        root = project()
        start_worker(root, real_env)
        plain_client.send_task("nobody.knows")
        plain_client.send_task("nobody.either")
        wait_dead(hexa.Settings.from_env(environ=real_env), 2)
        missing = hexa_cli(root, real_env, "dead", "replay", "no-such-id")
        assert missing.returncode == 1
        assert "no dead letter with id no-such-id" in missing.stderr
        purged = hexa_cli(root, real_env, "dead", "purge")
        assert "purged 2 dead letter(s)" in purged.stdout
        assert "0 dead letter(s)" in hexa_cli(root, real_env, "dead", "list").stdout


class TestDeadLettersEmbedded:
    def test_embedded_broker_keeps_dead_letters_under_dot_hexa(
        self, project: Callable[..., Path], start_worker: StartWorker
    ) -> None:
        root = project()
        embedded = {"RABBITMQ_URL": "", "REDIS_URL": ""}
        worker = start_worker(root, embedded)
        settings = hexa.Settings.from_env(environ={}, cwd=root)
        app = build_app(settings)
        try:
            app.send_task("nobody.knows", args=[1])
        finally:
            app.close()
        worker.wait_for("message.dead_lettered")
        listed = hexa_cli(root, embedded, "dead", "list")
        assert "nobody.knows" in listed.stdout
        assert "unknown task" in listed.stdout
        assert "1 dead letter(s) in celery.dead" in listed.stdout
