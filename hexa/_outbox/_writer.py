"""Writing outbox rows through the caller's session, so they share its transaction.

A `Session` (or `Connection`) gets each row at once: it commits, rolls back and rolls back to
a savepoint with the rest of the transaction. An `AsyncSession` cannot be used from the
thread `send_async()` publishes from, nor awaited by a plain `tasks_service.send_task()`, so
its rows wait in the block and are written when the block ends, or at a commit made inside
the block, whichever comes first. On PostgreSQL a `NOTIFY` in the same transaction wakes the
relay at commit (a rolled-back transaction notifies nobody).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from hexa._options import SendOptions
from hexa._outbox._message import stored_row
from hexa._outbox._table import CHANNEL, outbox_table
from hexa._publisher import Publisher
from hexa._result import TaskResult

Executor = Session | Connection


def _statements(rows: list[dict[str, Any]], dialect: str) -> list[tuple[Any, Any]]:
    """The INSERT of `rows`, and on PostgreSQL the NOTIFY the relay waits for."""
    statements: list[tuple[Any, Any]] = [(insert(outbox_table), rows)]
    if dialect == "postgresql":
        statements.append((select(func.pg_notify(CHANNEL, "")), None))
    return statements


def _dialect(bound: Any) -> str:
    engine = bound.get_bind() if isinstance(bound, Session) else bound
    return str(engine.dialect.name)


class Writer:
    """Turns the sends of one `outbox(...)` block into rows of the caller's transaction."""

    def store(
        self,
        publisher: Publisher,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: SendOptions,
        default_queue: str | None,
        store_result: bool,
    ) -> TaskResult[Any]:
        """What `publish()` does inside the block: build the message, keep it as a row."""
        row, result = stored_row(
            publisher, name, args, kwargs, options, default_queue, store_result
        )
        self.write(row)
        return result

    def write(self, row: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self, failed: bool) -> None:
        """End of a `with` block."""

    async def aclose(self, failed: bool) -> None:
        """End of an `async with` block."""
        self.close(failed)


class SessionWriter(Writer):
    """A sync `Session` or `Connection`: each row is written at once."""

    def __init__(self, session: Executor) -> None:
        self.session = session
        self.dialect = _dialect(session)

    def write(self, row: dict[str, Any]) -> None:
        for statement, params in _statements([row], self.dialect):
            self.session.execute(statement, params)


class AsyncSessionWriter(Writer):
    """An `AsyncSession`: rows kept until the block ends or the session commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = _dialect(session.sync_session)
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # send_async() appends from worker threads
        event.listen(session.sync_session, "before_commit", self._before_commit)
        event.listen(session.sync_session, "after_soft_rollback", self._after_rollback)

    def write(self, row: dict[str, Any]) -> None:
        """Keep `row`; like a write through a sync session, it begins the transaction."""
        with self._lock:
            sync_session = self.session.sync_session
            if not sync_session.in_transaction():
                sync_session.begin()  # no I/O: a connection is taken at the first statement
            self._rows.append(row)

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            rows, self._rows = self._rows, []
        return rows

    def _before_commit(self, session: Session) -> None:
        """A commit inside the block: the rows go in first (runs in SQLAlchemy's greenlet)."""
        rows = self._take()
        if rows:
            for statement, params in _statements(rows, self.dialect):
                session.execute(statement, params)

    def _after_rollback(self, session: Session, previous: SessionTransaction) -> None:
        if not previous.nested:  # the transaction itself, not a savepoint
            self._take()

    async def aclose(self, failed: bool) -> None:
        """Write what is left; an exception leaving the block discards it instead."""
        event.remove(self.session.sync_session, "before_commit", self._before_commit)
        event.remove(self.session.sync_session, "after_soft_rollback", self._after_rollback)
        rows = self._take()
        if rows and not failed:
            for statement, params in _statements(rows, self.dialect):
                await self.session.execute(statement, params)


def writer_for(session: Any, is_async: bool) -> Writer:
    """The writer for `session`, or an error that names the right form of the block."""
    if isinstance(session, AsyncSession):
        if not is_async:
            raise TypeError(
                "outbox(AsyncSession) needs `async with outbox(session):` "
                "and `await task.send_async(...)` inside it"
            )
        return AsyncSessionWriter(session)
    if isinstance(session, Session | Connection):
        return SessionWriter(session)
    if isinstance(session, AsyncConnection):
        raise TypeError("outbox() takes an AsyncSession, not an AsyncConnection: wrap it in one")
    raise TypeError(
        f"outbox() takes a SQLAlchemy Session, Connection or AsyncSession, not "
        f"{type(session).__name__}: pass the session whose transaction the tasks belong to"
    )
