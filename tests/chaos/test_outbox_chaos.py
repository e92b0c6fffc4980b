"""The outbox under faults: relays SIGKILLed mid-run, the broker down for 10 s, and figures.

Every committed transaction's task must run at least once; a rolled-back one never. The
table at the end of `make chaos` has a row per scenario, and the measured relay throughput
and commit-to-publish delay beside a direct `.send()` (reported, never asserted: speed is
not a pass/fail matter on a shared machine).
"""

from __future__ import annotations

import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

import hexa
from hexa import outbox
from hexa._app import HexaCelery
from hexa._options import SendOptions
from hexa._publisher import publish
from hexa.sqlalchemy import metadata, outbox_table
from tests.chaos.conftest import CHAOS_PROJECT, Records, Row, report
from tests.chaos.services import OwnRabbitMQ
from tests.conftest import StartWorker
from tests.support.outbox import postgres_database, relayed, start_relay
from tests.support.services import unique
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.chaos


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
def relays() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for relay in started:
        relay.stop()


def send(app: HexaCelery, name: str, *args: Any) -> hexa.TaskResult[Any]:
    return publish(name, args, {}, SendOptions(), app=app)


def transaction(engine: Engine, app: HexaCelery, key: str, index: int, commit: bool) -> None:
    with Session(engine) as session, session.begin(), outbox(session):
        send(app, "chaos.record", key, index, 0.0)
        if not commit:
            session.rollback()


def unsent(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).where(outbox_table.c.sent_at.is_(None))
        return int(conn.execute(query).scalar_one())


def wait_unsent(engine: Engine, timeout: float) -> float:
    """Poll until every row is sent; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while unsent(engine):
        assert time.monotonic() < deadline, f"{unsent(engine)} rows unsent after {timeout}s"
        time.sleep(0.01)
    return time.monotonic()


class TestRelayKilled:
    def test_1000_transactions_half_rolled_back_relay_sigkilled_twice(
        self,
        engine: Engine,
        database: str,
        real_env: dict[str, str],
        redis_url: str,
        project: Callable[..., Path],
        start_worker: StartWorker,
        records: Records,
        client: Callable[[dict[str, str]], HexaCelery],
        relays: list[WorkerProcess],
    ) -> None:
        env = {**real_env, "CHAOS_RECORD_URL": redis_url}
        root = project(CHAOS_PROJECT)
        start_worker(root, env, ["--concurrency=2"])
        relays.append(start_relay(root, env, database, "--batch=20"))
        app = client(env)
        committed, kills = [], []
        for index in range(1000):
            transaction(engine, app, records.key, index, commit=index % 2 == 0)
            committed += [index] if index % 2 == 0 else []
            if index in (300, 700):  # mid-run: kill the relay, start another
                kills.append(relayed(relays[-1]))
                relays[-1].kill(signal.SIGKILL)
                relays.append(start_relay(root, env, database, "--batch=20"))
        records.wait(lambda runs: set(committed) <= runs.keys(), 120, "every committed task run")
        time.sleep(1)  # a rolled-back or late duplicate would show by now
        runs = records.runs()
        row = records.row(
            "outbox: 1000 txns, relay SIGKILL x2",
            committed,
            None,
            f"500 rolled back, {len(set(runs) - set(committed))} of them ran; "
            f"relays published {[relayed(r) for r in relays]} (killed at {kills})",
        )
        assert row.lost == 0
        assert set(runs) == set(committed)  # no rolled-back transaction's task ever ran
        assert unsent(engine) == 0


class TestTwoRelays:
    def test_two_relays_on_a_1000_row_backlog_publish_nothing_twice(
        self,
        engine: Engine,
        database: str,
        real_env: dict[str, str],
        redis_url: str,
        project: Callable[..., Path],
        start_worker: StartWorker,
        records: Records,
        client: Callable[[dict[str, str]], HexaCelery],
        relays: list[WorkerProcess],
    ) -> None:
        env = {**real_env, "CHAOS_RECORD_URL": redis_url}
        root = project(CHAOS_PROJECT)
        app = client(env)
        for index in range(1000):
            transaction(engine, app, records.key, index, commit=True)
        relays.append(start_relay(root, env, database, "--batch=10"))
        relays.append(start_relay(root, env, database, "--batch=10"))
        start_worker(root, env, ["--concurrency=2"])
        records.wait(lambda runs: len(runs) == 1000, 120, "1000 runs")
        time.sleep(1)
        shares = [relayed(r) for r in relays]
        row = records.row("outbox: two relays at once", list(range(1000)), None, f"{shares}")
        assert (row.lost, row.duplicated, sum(shares)) == (0, 0, 1000)


class TestBrokerDown:
    def test_commits_go_on_while_rabbitmq_is_down_10s_and_the_backlog_drains(
        self,
        own_rabbitmq: OwnRabbitMQ,
        engine: Engine,
        database: str,
        redis_url: str,
        project: Callable[..., Path],
        start_worker: StartWorker,
        records: Records,
        client: Callable[[dict[str, str]], HexaCelery],
        relays: list[WorkerProcess],
    ) -> None:
        env = {
            "RABBITMQ_URL": own_rabbitmq.url(),
            "REDIS_URL": redis_url,
            "HEXA_DEFAULT_QUEUE": unique("chaos-outbox"),
            "CHAOS_RECORD_URL": redis_url,
            "HEXA_PUBLISH_TIMEOUT": "5",
        }
        root = project(CHAOS_PROJECT)
        start_worker(root, env)
        relays.append(start_relay(root, env, database))
        app = client(env)
        committed: list[int] = []
        failures: list[str] = []
        stop = threading.Event()

        def commit_forever() -> None:
            while not stop.is_set():
                try:
                    transaction(engine, app, records.key, len(committed), commit=True)
                    committed.append(len(committed))
                except Exception as error:
                    failures.append(repr(error))
                time.sleep(0.02)

        writer = threading.Thread(target=commit_forever)
        writer.start()
        try:
            records.wait(lambda runs: len(runs) >= 20, 30, "20 runs before the fault")
            own_rabbitmq.stop_app()
            down_from = len(committed)
            time.sleep(10)
            during = len(committed) - down_from
            own_rabbitmq.start_app()
            up_at = time.monotonic()
            time.sleep(2)
        finally:
            stop.set()
            writer.join(30)
        drained = wait_unsent(engine, 120)
        records.wait(lambda runs: set(committed) <= runs.keys(), 120, "every committed run")
        row = records.row(
            "outbox: RabbitMQ down 10 s",
            committed,
            drained - up_at,
            f"{during} commits while down, {len(failures)} failed; recovery = backlog sent",
        )
        assert failures == []
        assert during > 0
        assert row.lost == 0


class Arrivals:
    """A consumer that notes when each task id reaches the queue (monotonic clock)."""

    def __init__(self, url: str, queue: str) -> None:
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._consume, args=(url, queue), daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        assert self._ready.wait(10)

    def _consume(self, url: str, queue: str) -> None:
        with Connection(url) as conn:
            simple = conn.SimpleQueue(queue)
            self._ready.set()
            while not self._stop.is_set():
                try:
                    message = simple.get(timeout=0.2)
                except simple.Empty:
                    continue
                self.seen[message.headers["id"]] = time.monotonic()
                message.ack()
            simple.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


class TestFigures:
    def test_relay_throughput_and_commit_to_publish_delay_beside_a_direct_send(
        self,
        engine: Engine,
        database: str,
        real_env: dict[str, str],
        rabbitmq_url: str,
        project: Callable[..., Path],
        client: Callable[[dict[str, str]], HexaCelery],
        relays: list[WorkerProcess],
    ) -> None:
        root, app = project(CHAOS_PROJECT), client(real_env)
        arrivals = Arrivals(rabbitmq_url, real_env["HEXA_DEFAULT_QUEUE"])
        try:
            direct, relayed_delay = [], []
            relays.append(start_relay(root, real_env, database))
            for index in range(100):  # one at a time, as requests would
                started = time.monotonic()
                direct_id = send(app, "chaos.echo", index).id
                with Session(engine) as session, session.begin(), outbox(session):
                    outbox_id = send(app, "chaos.echo", index).id
                committed = time.monotonic()
                _wait_seen(arrivals, [direct_id, outbox_id])
                direct.append(arrivals.seen[direct_id] - started)
                relayed_delay.append(arrivals.seen[outbox_id] - committed)
            relays.pop().stop()
            n = 2000
            started = time.monotonic()
            direct_ids = [send(app, "chaos.echo", i).id for i in range(n)]
            direct_rate = n / (time.monotonic() - started)
            _wait_seen(arrivals, direct_ids)
            with Session(engine) as session, session.begin(), outbox(session):
                outbox_ids = [send(app, "chaos.echo", i).id for i in range(n)]
            relays.append(start_relay(root, real_env, database))
            relay_from = time.monotonic()
            _wait_seen(arrivals, outbox_ids, timeout=120)
            relay_rate = n / (max(arrivals.seen[i] for i in outbox_ids) - relay_from)
        finally:
            arrivals.close()
        note = (
            f"delay to the queue: direct .send() {_ms(direct)}; commit to queue "
            f"{_ms(relayed_delay)}. Throughput, {n} msgs: direct {direct_rate:.0f}/s, "
            f"relay {relay_rate:.0f}/s"
        )
        report(Row("outbox: figures", 2 * n + 200, 2 * n + 200, 0, 0, None, note))
        print(note)
        assert len(relayed_delay) == 100


def _wait_seen(arrivals: Arrivals, ids: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not all(i in arrivals.seen for i in ids):
        assert time.monotonic() < deadline, "messages did not reach the queue"
        time.sleep(0.0005)
