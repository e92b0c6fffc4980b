"""`with outbox(session)`: sends become rows of the caller's transaction (SQLite, no broker).

The relay's half runs here too, against the embedded file broker; the PostgreSQL, RabbitMQ
and real-worker half is in tests/integration/test_outbox.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from kombu import Connection
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

import hexa
from hexa import DispatchError, TasksService, module_task, outbox
from hexa._app import HexaCelery, build_app
from hexa._definitions import definitions
from hexa._outbox._command import outbox_url
from hexa._outbox._database import sync_url
from hexa._outbox._relay import Relay
from hexa._publisher import Publisher
from hexa.sqlalchemy import metadata, outbox_table
from tests.support.worker import REPO


@module_task(module="outbox_unit")
def add(a: int, b: int = 0) -> int:
    return a + b


@module_task(module="outbox_unit", queue="slow")
def note(text: str) -> None:
    return None


@pytest.fixture
def app(tmp_path: Path) -> Iterator[HexaCelery]:
    """`.send()` publishes to an embedded broker in tmp_path; a direct publish fails the test."""
    built = build_app(hexa.Settings.from_env(environ={}, cwd=tmp_path))
    hexa.use_app(built)
    yield built
    hexa.use_app(None)
    built.close()


@pytest.fixture
def no_direct_publish(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("published directly instead of through the outbox")

    monkeypatch.setattr(Publisher, "publish", refuse)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    metadata.create_all(made)
    yield made
    made.dispose()


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox_table).order_by(outbox_table.c.id)))


def queued(app: HexaCelery, queue: str) -> list[Any]:
    """Every message waiting in `queue` of the embedded broker (taken off it)."""
    taken = []
    with Connection(app.conf.broker_url, transport_options=app.conf.broker_transport_options) as c:
        simple = c.SimpleQueue(queue)
        while simple.qsize():
            message = simple.get(timeout=1)
            message.ack()
            taken.append(message)
        simple.close()
    return taken


def python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


class TestImports:
    def test_import_hexa_imports_nothing_of_sqlalchemy(self) -> None:
        code = "import sys, hexa; print(sorted(m for m in sys.modules if 'sqlalchemy' in m))"
        assert python(code) == "[]"

    def test_the_command_line_parser_imports_nothing_of_sqlalchemy(self) -> None:
        code = "import sys, hexa._cli as c; c.parser(); print('sqlalchemy' in sys.modules)"
        assert python(code) == "False"


@pytest.mark.usefixtures("no_direct_publish")
class TestSessionBlock:
    def test_a_send_is_a_row_of_the_transaction_with_the_id_the_task_will_run_with(
        self, app: HexaCelery, engine: Engine
    ) -> None:
        with Session(engine) as session, session.begin(), outbox(session):
            result = add.send(1, b=2)
        [row] = rows(engine)
        assert (row.task_id, row.task_name, row.sent_at) == (result.id, "outbox_unit.add", None)
        assert row.message["headers"]["id"] == result.id
        assert row.message["body"][:2] == [[1], {"b": 2}]
        assert row.queue == app.conf.task_default_queue

    def test_a_rolled_back_transaction_leaves_no_row(self, app: HexaCelery, engine: Engine) -> None:
        with Session(engine) as session:
            with session.begin(), outbox(session):
                add.send(1)
                session.rollback()
            with session.begin(), outbox(session):
                add.send(2)
        assert [row.message["body"][0] for row in rows(engine)] == [[2]]

    def test_a_send_inside_a_rolled_back_savepoint_is_gone_with_it(
        self, app: HexaCelery, engine: Engine
    ) -> None:
        with Session(engine) as session, session.begin(), outbox(session):
            add.send(1)
            savepoint = session.begin_nested()
            add.send(2)
            savepoint.rollback()
        assert [row.message["body"][0] for row in rows(engine)] == [[1]]

    def test_options_queue_priority_and_eta_are_in_the_stored_message(
        self, app: HexaCelery, engine: Engine
    ) -> None:
        with Session(engine) as session, session.begin(), outbox(session):
            add.with_options(countdown=30, priority=7).send(1)
            note.send("hi")
        first, second = rows(engine)
        assert (first.priority, first.message["headers"]["eta"] is not None) == (7, True)
        assert (second.queue, second.message["headers"]["ignore_result"]) == ("slow", True)

    def test_tasks_service_send_task_writes_a_row_too(
        self, app: HexaCelery, engine: Engine
    ) -> None:
        service = TasksService(definitions({"outbox_unit_tasks": {"add": add.spec.func}}))
        with Session(engine) as session, session.begin(), outbox(session):
            result = service.send_task("outbox_unit.add", args=[4])
        assert [row.task_id for row in rows(engine)] == [result.id]

    def test_bad_arguments_are_refused_as_before_and_write_nothing(
        self, app: HexaCelery, engine: Engine
    ) -> None:
        with Session(engine) as session, session.begin(), outbox(session):
            with pytest.raises(TypeError, match="missing a required argument: 'a'"):
                add.send()  # type: ignore[call-arg]
            with pytest.raises(DispatchError, match="valid options"):
                add.with_options(retries=3)  # type: ignore[call-arg]
        assert rows(engine) == []

    def test_after_the_block_send_publishes_directly_again(
        self, app: HexaCelery, engine: Engine
    ) -> None:
        with Session(engine) as session, session.begin(), outbox(session):
            add.send(1)
        with pytest.raises(AssertionError, match="published directly"):
            add.send(2)


class TestAsyncSessionBlock:
    @pytest.fixture
    def async_url(self, engine: Engine) -> str:
        return str(engine.url).replace("sqlite://", "sqlite+aiosqlite://")

    def run(self, url: str, body: Any) -> None:
        async def main() -> None:
            made = create_async_engine(url)
            try:
                async with AsyncSession(made) as session:
                    await body(session)
            finally:
                await made.dispose()

        anyio.run(main)

    @pytest.mark.usefixtures("app", "no_direct_publish")
    def test_send_async_and_a_plain_send_task_are_written_at_commit(
        self, async_url: str, engine: Engine
    ) -> None:
        service = TasksService(definitions({"outbox_unit_tasks": {"add": add.spec.func}}))
        ids = []

        async def body(session: AsyncSession) -> None:
            async with session.begin(), outbox(session):
                ids.append((await add.send_async(1)).id)
                ids.append(service.send_task("outbox_unit.add", args=[2]).id)

        self.run(async_url, body)
        assert [row.task_id for row in rows(engine)] == ids

    @pytest.mark.usefixtures("app", "no_direct_publish")
    def test_a_commit_inside_the_block_takes_the_rows_and_a_rollback_drops_them(
        self, async_url: str, engine: Engine
    ) -> None:
        async def body(session: AsyncSession) -> None:
            async with outbox(session):
                await add.send_async(1)
                await session.rollback()
                await add.send_async(2)
                await session.commit()
                await add.send_async(3)

        self.run(async_url, body)
        # 3 was written at the end of the block, outside a commit: never committed.
        assert [row.message["body"][0] for row in rows(engine)] == [[2]]

    @pytest.mark.usefixtures("app", "no_direct_publish")
    def test_an_error_leaving_the_block_discards_its_sends(
        self, async_url: str, engine: Engine
    ) -> None:
        async def body(session: AsyncSession) -> None:
            try:
                async with outbox(session):
                    await add.send_async(1)
                    raise ValueError("boom")
            except ValueError:
                await session.commit()

        self.run(async_url, body)
        assert rows(engine) == []

    def test_a_plain_with_block_on_an_async_session_says_to_use_async_with(
        self, async_url: str
    ) -> None:
        async def body(session: AsyncSession) -> None:
            with pytest.raises(TypeError, match="async with outbox"), outbox(session):
                pass

        self.run(async_url, body)


class TestWrongSession:
    def test_something_that_is_not_a_session_is_refused_with_what_to_pass(self) -> None:
        with pytest.raises(TypeError, match="takes a SQLAlchemy Session"), outbox(object()):
            pass


class TestRelayOnSQLite:
    def test_committed_rows_are_published_once_with_their_ids_and_marked_sent(
        self, app: HexaCelery, engine: Engine
    ) -> None:
        with Session(engine) as session, session.begin(), outbox(session):
            sent = [add.send(i).id for i in range(3)]
            slow = note.send("x").id
        relay = Relay(engine, app, batch_size=2)
        assert [relay.relay_batch() for _ in range(3)] == [2, 2, 0]
        default = [m.headers["id"] for m in queued(app, app.conf.task_default_queue)]
        assert default == sent
        assert [m.headers["id"] for m in queued(app, "slow")] == [slow]
        assert all(row.sent_at is not None for row in rows(engine))

    def test_a_failed_publish_keeps_the_row_unsent_for_the_next_batch(
        self, app: HexaCelery, engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with Session(engine) as session, session.begin(), outbox(session):
            first, second = add.send(1).id, add.send(2).id
        real = Publisher._send_confirmed
        calls: list[str] = []

        def fail_second(self: Publisher, name: str, task_id: str, *rest: Any) -> None:
            calls.append(task_id)
            if task_id == second and calls.count(second) == 1:
                raise hexa.PublishError("broker away")
            real(self, name, task_id, *rest)

        monkeypatch.setattr(Publisher, "_send_confirmed", fail_second)
        relay = Relay(engine, app)
        with pytest.raises(hexa.PublishError):
            relay.relay_batch()
        assert [row.sent_at is not None for row in rows(engine)] == [True, False]
        assert relay.relay_batch() == 1
        assert [m.headers["id"] for m in queued(app, app.conf.task_default_queue)] == [
            first,
            second,
        ]


class TestSettings:
    def test_async_drivers_become_their_sync_counterparts_for_the_relay(self) -> None:
        assert str(sync_url("postgresql+asyncpg://u@h/db")) == "postgresql+psycopg://u@h/db"
        assert str(sync_url("postgresql://u@h/db")) == "postgresql+psycopg://u@h/db"
        assert str(sync_url("sqlite+aiosqlite:///x.db")) == "sqlite:///x.db"

    def test_the_url_comes_from_the_environment_then_dot_env(self, tmp_path: Path) -> None:
        (tmp_path / ".env").write_text("HEXA_OUTBOX_URL=sqlite:///from-file.db\n")
        assert outbox_url({}, tmp_path) == "sqlite:///from-file.db"
        assert outbox_url({"HEXA_OUTBOX_URL": "sqlite:///env.db"}, tmp_path) == "sqlite:///env.db"
        assert outbox_url({}, tmp_path / "nowhere") is None

    def test_the_variable_and_the_commands_are_in_the_configuration_reference(self) -> None:
        page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
        assert "`HEXA_OUTBOX_URL`" in page
        assert "`hexa outbox init" in page
