"""Running the relay (`hexa outbox relay`, also started by `hexa worker`), and the table."""

from __future__ import annotations

import threading

from celery import Celery
from sqlalchemy import func, select

from hexa._logging import get_logger
from hexa._outbox._database import create_table, ensure_table, relay_engine, shown
from hexa._outbox._relay import DEFAULT_BATCH, Relay
from hexa._outbox._table import outbox_table

log = get_logger()
RESTART_PAUSE = 5.0  # after the relay could not start (database away, table missing)


def open_relay(
    url: str, app: Celery, batch: int = DEFAULT_BATCH, poll: float | None = None
) -> Relay:
    """A relay on `url` with the table checked (created on SQLite)."""
    engine = relay_engine(url)
    ensure_table(engine)
    return Relay(engine, app, batch, poll)


def run_relay(
    url: str, app: Celery, stop: threading.Event, batch: int = DEFAULT_BATCH, retry: bool = False
) -> None:
    """Relay until `stop`. A setup error (no table, no database) ends it with that error,
    unless `retry` (the relay of a worker, which must not stop): then it is logged with its
    fix and tried again every few seconds."""
    log.info("outbox.relay.database", url=shown(url))
    while not stop.is_set():
        try:
            relay = open_relay(url, app, batch)
        except Exception as error:
            if not retry:
                raise
            log.error("outbox.relay.failed", error=f"{type(error).__name__}: {error}")
            stop.wait(RESTART_PAUSE)
        else:
            relay.run(stop)


def init_table(url: str) -> str:
    """`hexa outbox init`: create the table; the line to print."""
    engine = relay_engine(url)
    try:
        created = create_table(engine)
    finally:
        engine.dispose()
    state = "created" if created else "already exists:"
    return f"{state} table {outbox_table.name} in {shown(url)}"


def status_lines(url: str) -> list[str]:
    """`hexa outbox status`: unsent rows (and the oldest one's age) and recently sent rows."""
    engine = relay_engine(url)
    t = outbox_table
    query = select(
        func.count().filter(t.c.sent_at.is_(None)),
        func.min(t.c.created_at).filter(t.c.sent_at.is_(None)),
        func.count().filter(t.c.sent_at.is_not(None)),
    )
    try:
        with engine.connect() as conn:
            unsent, oldest, sent = conn.execute(query).one()
    finally:
        engine.dispose()
    since = f", oldest created {oldest}" if oldest is not None else ""
    return [f"unsent  {unsent}{since}", f"sent    {sent} (kept an hour)", f"table   {shown(url)}"]
