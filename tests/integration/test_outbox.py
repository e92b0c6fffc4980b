"""The outbox on the real PostgreSQL, RabbitMQ and Redis, with real worker and relay processes.

Each test has a database of its own (created and dropped) and a queue of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from celery import Celery
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from hexa import TaskResult, outbox
from hexa.sqlalchemy import metadata, outbox_table
from tests.conftest import StartWorker
from tests.integration.projects.outbox_probe.module import record
from tests.support.outbox import OUTBOX_PROBE, Runs, postgres_database, relayed, start_relay
from tests.support.worker import REPO, WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:
    made = create_engine(database)
    metadata.create_all(made)
    yield made
    made.dispose()


@pytest.fixture
def runs(redis_url: str) -> Iterator[Runs]:
    found = Runs(redis_url)
    yield found
    found.close()


@pytest.fixture
def env(real_env: dict[str, str], redis_url: str) -> dict[str, str]:
    return {**real_env, "OUTBOX_RECORD_URL": redis_url}


@pytest.fixture
def root(project: Callable[..., Path]) -> Path:
    return project(OUTBOX_PROBE)


@pytest.fixture
def relays() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for relay in started:
        relay.stop()


def transactions(engine: Engine, runs: Runs, indices: range) -> list[TaskResult[int]]:
    """One transaction per index, each sending `record(index)`; odd ones roll back."""
    committed = []
    for index in indices:
        with Session(engine) as session, session.begin(), outbox(session):
            result = record.send(runs.key, index)
            if index % 2:
                session.rollback()
            else:
                committed.append(result)
    return committed


def unsent(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).where(outbox_table.c.sent_at.is_(None))
        return int(conn.execute(query).scalar_one())


@pytest.mark.usefixtures("hexa_client")
class TestRelay:
    def test_committed_sends_run_with_their_ids_and_rolled_back_ones_never(
        self,
        engine: Engine,
        database: str,
        runs: Runs,
        env: dict[str, str],
        root: Path,
        start_worker: StartWorker,
        relays: list[WorkerProcess],
    ) -> None:
        start_worker(root, env)
        relays.append(start_relay(root, env, database))
        committed = transactions(engine, runs, range(20))
        assert [result.get(timeout=30) for result in committed] == list(range(0, 20, 2))
        runs.wait(lambda counts: len(counts) >= 10, 10, "10 committed runs")
        time.sleep(0.5)  # a rolled-back send would have run by now too
        assert runs.counts() == dict.fromkeys(range(0, 20, 2), 1)
        assert unsent(engine) == 0
        assert relays[0].events("outbox.relay.started")[0]["waits_for"] == "notify"
        assert relays[0].events("outbox.relay.listen_failed") == []  # woken by NOTIFY, not polls

    def test_an_async_session_s_send_async_runs_after_its_commit(
        self,
        engine: Engine,
        database: str,
        runs: Runs,
        env: dict[str, str],
        root: Path,
        start_worker: StartWorker,
        relays: list[WorkerProcess],
    ) -> None:
        start_worker(root, env)
        relays.append(start_relay(root, env, database))

        async def send() -> int:
            made = create_async_engine(database)  # psycopg 3 serves sync and async
            try:
                async with AsyncSession(made) as session, session.begin(), outbox(session):
                    result = await record.send_async(runs.key, 7)
                return await result
            finally:
                await made.dispose()

        assert anyio.run(send) == 7

    def test_hexa_worker_runs_the_relay_when_hexa_outbox_url_is_set(
        self,
        engine: Engine,
        database: str,
        runs: Runs,
        env: dict[str, str],
        root: Path,
        start_worker: StartWorker,
    ) -> None:
        worker = start_worker(root, {**env, "HEXA_OUTBOX_URL": database})
        worker.wait_for("outbox.relay.started")
        with Session(engine) as session, session.begin(), outbox(session):
            result = record.send(runs.key, 3)
        assert result.get(timeout=30) == 3
        assert worker.wait_for("outbox.relayed")[0]["count"] == 1

    def test_two_relays_at_once_publish_every_row_exactly_once(
        self,
        engine: Engine,
        database: str,
        runs: Runs,
        env: dict[str, str],
        root: Path,
        start_worker: StartWorker,
        relays: list[WorkerProcess],
    ) -> None:
        transactions(engine, runs, range(600))  # 300 committed, waiting for a relay
        relays.append(start_relay(root, env, database, "--batch=10"))
        relays.append(start_relay(root, env, database, "--batch=10"))
        start_worker(root, env, ["--concurrency=2"])
        runs.wait(lambda counts: len(counts) == 300, 60, "300 committed runs")
        time.sleep(1)
        counts = runs.counts()
        assert set(counts) == set(range(0, 600, 2))
        assert sum(counts.values()) - len(counts) == 0  # duplicates
        assert relayed(relays[0]) + relayed(relays[1]) == 300


class TestCommands:
    def hexa(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hexa", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "HEXA_OUTBOX_URL": ""},
        )

    def test_init_creates_the_table_once_and_status_counts_unsent_rows(self, database: str) -> None:
        first, second = (
            self.hexa("outbox", "init", "--url", database),
            self.hexa("outbox", "init", "--url", database),
        )
        assert first.stdout.startswith("created table hexa_outbox in postgresql+psycopg://")
        assert second.stdout.startswith("already exists: table hexa_outbox")
        status = self.hexa("outbox", "status", "--url", database)
        assert status.stdout.splitlines()[0] == "unsent  0"

    def test_a_relay_without_the_table_says_how_to_create_it(self, database: str) -> None:
        done = self.hexa("outbox", "relay", "--url", database)
        assert done.returncode == 2
        assert "run `hexa outbox init`" in done.stderr

    def test_no_url_at_all_names_the_variable(self) -> None:
        done = self.hexa("outbox", "status")
        assert (done.returncode, "set HEXA_OUTBOX_URL" in done.stderr) == (2, True)


def test_a_plain_celery_client_could_not_tell_the_message_apart(
    engine: Engine,
    database: str,
    plain_client: Celery,
    hexa_client: Celery,
    relays: list[WorkerProcess],
    root: Path,
    env: dict[str, str],
    runs: Runs,
) -> None:
    """The relayed message is the publisher's: a plain Celery consumer sees the same headers."""
    with Session(engine) as session, session.begin(), outbox(session):
        result = record.with_options(priority=5).send(runs.key, 1)
    relays.append(start_relay(root, env, database))
    with plain_client.connection_for_read() as conn:
        queue = conn.SimpleQueue(env["HEXA_DEFAULT_QUEUE"])
        message = queue.get(timeout=20)
        message.ack()
        queue.close()
    headers = message.headers
    assert (headers["id"], headers["task"], message.properties["priority"]) == (
        result.id,
        "outbox_probe.record",
        5,
    )
    assert message.payload[0] == [runs.key, 1]


class TestExampleApplication:
    def test_a_purchase_invoice_and_its_erp_task_share_a_transaction_with_no_server(
        self, project: Callable[..., Path], start_worker: StartWorker
    ) -> None:
        """`make worker` + examples/purchase_invoice.py: embedded broker, SQLite under .hexa/."""
        root = project()
        shutil.copytree(REPO / "examples", root / "examples")
        no_servers = {"RABBITMQ_URL": "", "REDIS_URL": "", "HEXA_DEFAULT_QUEUE": ""}
        sqlite = {"HEXA_OUTBOX_URL": "sqlite:///.hexa/app.db", "DATABASE_URL": ""}
        worker = start_worker(root, {**no_servers, **sqlite}, ["--concurrency=1"])
        assert worker.wait_for("outbox.relay.started")[0]["waits_for"] == "poll"
        env = {k: v for k, v in os.environ.items() if k not in {*no_servers, *sqlite}}
        done = subprocess.run(
            [sys.executable, "-m", "examples.purchase_invoice", "1500"],
            cwd=root, env=env, capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        stored, erp = done.stdout.splitlines()
        invoice_id = int(stored.split()[2])
        assert f"'purchase_invoice_id': {invoice_id}" in erp
        assert "'total': 1500" in erp  # read back from the committed row by the task
        assert (root / ".hexa" / "app.db").is_file()
