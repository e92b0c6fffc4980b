"""Running the relay: alone (`hexa outbox relay`) or in a thread of `hexa worker`."""

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


def run_relay(url: str, app: Celery, stop: threading.Event, batch: int = DEFAULT_BATCH) -> None:
    """`hexa outbox relay`: a setup error (no table) ends it with that error."""
    log.info("outbox.relay.database", url=shown(url))
    open_relay(url, app, batch).run(stop)


class RelayThread:
    """The relay inside `hexa worker`: started when the worker is ready, stopped at shutdown."""

    def __init__(self, url: str, app: Celery) -> None:
        self.url, self.app = url, app
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="hexa-outbox-relay", daemon=True)

    def _run(self) -> None:
        log.info("outbox.relay.database", url=shown(self.url))
        while not self.stop_event.is_set():
            try:
                open_relay(self.url, self.app).run(self.stop_event)
            except Exception as error:  # a worker keeps running tasks; say what to fix
                log.error("outbox.relay.failed", error=f"{type(error).__name__}: {error}")
                self.stop_event.wait(RESTART_PAUSE)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout)


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
