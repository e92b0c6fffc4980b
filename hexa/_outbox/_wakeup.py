"""How an idle relay waits: for a PostgreSQL NOTIFY, or simply for the next poll.

Every outbox write on PostgreSQL also runs `pg_notify('hexa_outbox', '')` in its transaction;
PostgreSQL delivers it at commit (never after a rollback), so a listening relay starts
publishing within milliseconds. The poll is the fallback: a missed notification (the listening
connection was down) costs at most one poll interval. Other databases and drivers poll.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine

from hexa._logging import get_logger
from hexa._outbox._table import CHANNEL

log = get_logger()


class Poll:
    """Wait the poll interval (or until the relay is stopped)."""

    kind = "poll"

    def wait(self, timeout: float, stop: threading.Event) -> None:
        stop.wait(timeout)

    def close(self) -> None:
        pass


class Listen:
    """`LISTEN hexa_outbox` on a psycopg connection of its own, outside the engine's pool."""

    kind = "notify"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None:
            raw = self.engine.raw_connection()
            conn: Any = raw.driver_connection
            raw.detach()  # lives as long as the relay, never back in the pool
            conn.rollback()  # a pre-ping may have opened a transaction
            conn.autocommit = True
            conn.execute(f"LISTEN {CHANNEL}")
            self._conn = conn
        return self._conn

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Return on the first notification, or after `timeout` seconds."""
        try:
            for _ in self._connection().notifies(timeout=timeout, stop_after=1):
                pass
        except Exception as error:  # the database went away: poll until it is back
            log.warning("outbox.relay.listen_failed", error=f"{type(error).__name__}: {error}")
            self.close()
            stop.wait(timeout)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


@contextlib.contextmanager
def wakeup_for(engine: Engine) -> Iterator[Poll | Listen]:
    """`Listen` on PostgreSQL through psycopg 3, `Poll` everywhere else."""
    listens = engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
    wakeup: Poll | Listen = Listen(engine) if listens else Poll()
    try:
        yield wakeup
    finally:
        wakeup.close()
