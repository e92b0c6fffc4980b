"""The examples and Celery's own tools, against a real `hexa worker` on RabbitMQ + Redis."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import StartWorker
from tests.support.fresh import fresh_repo_modules
from tests.support.worker import REPO, WorkerProcess

pytestmark = pytest.mark.integration
CELERY = str(Path(sys.executable).with_name("celery"))


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=90, check=False)  # fmt: skip


def hostname(worker: WorkerProcess) -> str:
    """The node name the `start_worker` fixture gave the worker (`w-…@%h`, expanded)."""
    given = next(a for a in worker.proc.args if str(a).startswith("--hostname="))
    return str(given).removeprefix("--hostname=").replace("%h", socket.gethostname())


def poll(client: TestClient, task_id: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/tasks/{task_id}").json()
        if body["status"] in ("SUCCESS", "FAILURE"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} still {body['status']} after {timeout}s")


@pytest.fixture
def fastapi_app() -> Iterator[FastAPI]:
    with fresh_repo_modules():
        from examples.fastapi_app import app

        yield app


@pytest.fixture
def worker(
    project: Callable[..., Path], start_worker: StartWorker, real_env: dict[str, str]
) -> WorkerProcess:
    return start_worker(project(), real_env)


class TestExamples:
    def test_plain_client_gets_results_by_name(
        self, worker: WorkerProcess, real_env: dict[str, str]
    ) -> None:
        done = run([sys.executable, "examples/plain_client.py"], REPO, real_env)
        assert done.stdout.splitlines() == ["Factura emitida!", "Sent"], done.stderr

    def test_fastapi_enqueues_and_reports_the_result(
        self, worker: WorkerProcess, hexa_client: Celery, fastapi_app: FastAPI
    ) -> None:
        with TestClient(fastapi_app) as client:
            accepted = client.post("/invoices/123/emit")
            assert accepted.status_code == 202
            task_id = accepted.json()["task_id"]
            assert poll(client, task_id) == {
                "task_id": task_id,
                "status": "SUCCESS",
                "result": "Factura 123 emitida!",
                "error": None,
            }
        succeeded = worker.wait_for("task.succeeded")[0]
        assert succeeded["task_id"] == task_id

    def test_fastapi_reports_an_unknown_id_as_pending(
        self, hexa_client: Celery, fastapi_app: FastAPI
    ) -> None:
        with TestClient(fastapi_app) as client:
            assert client.get("/tasks/no-such-id").json()["status"] == "PENDING"


def task_events(client: Celery) -> set[str]:
    """The task events seen on `celeryev` while one task runs (other suites' are ignored)."""
    seen: list[tuple[str, str]] = []  # (type, task id)
    with client.connection_for_read() as conn:
        receiver = client.events.Receiver(
            conn, handlers={"*": lambda event: seen.append((event["type"], event.get("uuid")))}
        )
        with receiver.consumer_context() as (connection, _, _):
            sent = client.send_task("invoicing.emit_invoice", args=[5])
            sent.get(timeout=20)
            deadline = time.monotonic() + 3
            while ("task-succeeded", sent.id) not in seen and time.monotonic() < deadline:
                with contextlib.suppress(socket.timeout):
                    connection.drain_events(timeout=0.5)
    return {kind for kind, task_id in seen if task_id == sent.id}


class TestCeleryTools:
    def test_inspect_registered_lists_the_hexa_tasks(
        self, worker: WorkerProcess, real_env: dict[str, str]
    ) -> None:
        node = hostname(worker)
        done = run([CELERY, "-A", "hexa.celery_app", "inspect", "registered", "-d", node,
                    "--json"], worker.cwd, real_env)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        registered = json.loads(done.stdout.strip().splitlines()[-1])[node]
        assert {
            "invoicing.emit_invoice",
            "notifications.send_notification",
            "yiqi_erp.create_invoice_from_purchase_invoice",
        } <= set(registered)

    def test_task_events_start_when_asked_for(
        self, worker: WorkerProcess, plain_client: Celery
    ) -> None:
        """What Flower does: `enable_events`, then task-received/started/succeeded arrive."""
        node = hostname(worker)
        assert task_events(plain_client) == set()  # off by default, as in Celery
        replies = plain_client.control.enable_events(destination=[node], reply=True, timeout=5)
        assert replies, "the worker did not answer enable_events"
        assert {"task-received", "task-started", "task-succeeded"} <= task_events(plain_client)

    def test_purge_empties_the_configured_queue(
        self,
        project: Callable[..., Path],
        real_env: dict[str, str],
        plain_client: Celery,
        queue: str,
    ) -> None:
        plain_client.send_task("invoicing.emit_invoice")  # no worker: it stays queued
        done = run([CELERY, "-A", "hexa.celery_app", "purge", "-f", "-Q", queue], project(),
                   real_env)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Purged 1 message" in done.stdout
        with plain_client.connection_for_read() as conn:
            assert conn.default_channel.queue_declare(queue, passive=True).message_count == 0
