"""Fixtures shared by every test: the real services, isolated queues, real workers."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from celery import Celery
from kombu import Connection

import hexa
from hexa._app import build_app
from tests.support.services import RABBITMQ_URL, REDIS_URL, require, unique
from tests.support.worker import REPO, WorkerProcess

StartWorker = Callable[..., WorkerProcess]


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    return require(RABBITMQ_URL, "RabbitMQ")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require(REDIS_URL, "Redis")


@pytest.fixture
def queue(rabbitmq_url: str) -> Iterator[str]:
    """A default queue of this test's own, deleted afterwards, so suites never share work."""
    name = unique("hexa-test")
    yield name
    with Connection(rabbitmq_url) as conn:
        channel = conn.default_channel
        for suffix in ("", ".dead"):
            try:
                channel.queue_delete(name + suffix)
            except Exception:  # the queue may never have been declared
                channel = conn.channel()


@pytest.fixture
def real_env(rabbitmq_url: str, redis_url: str, queue: str) -> dict[str, str]:
    """Environment of a worker or client on the real RabbitMQ and Redis."""
    return {"RABBITMQ_URL": rabbitmq_url, "REDIS_URL": redis_url, "HEXA_DEFAULT_QUEUE": queue}


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """Copy the example `modules/` (and optional extra module folders) into a fresh project."""

    def make(*extra: Path) -> Path:
        root = tmp_path / "project"
        if not root.exists():
            shutil.copytree(
                REPO / "modules", root / "modules", ignore=shutil.ignore_patterns("__pycache__")
            )
        for folder in extra:
            shutil.copytree(
                folder, root / "modules" / folder.name, ignore=shutil.ignore_patterns("__pycache__")
            )
        return root

    return make


@pytest.fixture
def start_worker() -> Iterator[StartWorker]:
    """Start `hexa worker` processes; every one is stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start(
        cwd: Path,
        env: dict[str, str],
        args: Sequence[str] = (),
        ready: bool = True,
        command: str = "worker",
    ) -> WorkerProcess:
        worker = WorkerProcess(
            cwd,
            env,
            [*args, f"--hostname={unique('w')}@%h"]
            if command in ("worker", "celery-apps")
            else args,
            command,
        )
        started.append(worker)
        return worker.wait_ready() if ready else worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def plain_client(real_env: dict[str, str]) -> Iterator[Celery]:
    """A plain Celery client that knows task names only, as in the seed's shell example."""
    app = Celery("hexa_worker", broker=real_env["RABBITMQ_URL"], backend=real_env["REDIS_URL"])
    app.conf.task_default_queue = real_env["HEXA_DEFAULT_QUEUE"]
    yield app
    app.close()


@pytest.fixture
def hexa_client(real_env: dict[str, str]) -> Iterator[Celery]:
    """Make `.send()` in this process publish to the test's queue on the real services."""
    settings = hexa.Settings.from_env(environ=real_env)
    app = build_app(settings)
    hexa.use_app(app)
    yield app
    hexa.use_app(None)
    app.close()
