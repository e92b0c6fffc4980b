"""The relay: publishes committed outbox rows, oldest first, then marks them sent.

One batch is one database transaction: lock up to `batch_size` unsent rows (`FOR UPDATE SKIP
LOCKED` on PostgreSQL, so relays running at once take disjoint rows; an immediate transaction
on SQLite, so they take turns), publish each and wait for the broker's confirm, mark the
published ones sent, commit. A relay killed mid-batch commits nothing: its rows are unlocked
and the next relay publishes them again (at-least-once; tasks are idempotent anyway).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from celery import Celery
from sqlalchemy import Engine, delete, select, update

from hexa._logging import get_logger
from hexa._outbox._message import publish_row
from hexa._outbox._table import SENT_ROWS_KEPT, outbox_table, utcnow
from hexa._outbox._wakeup import wakeup_for
from hexa._publisher import publisher

log = get_logger()

DEFAULT_BATCH = 100
#: Seconds between scans of an idle relay: a NOTIFY wakes a listening one (PostgreSQL) at once,
#: so its poll is only the fallback; elsewhere the poll is how soon a commit is published.
POLL_LISTENING = 1.0
POLL = 0.2
ERROR_PAUSE = 1.0  # after a failed batch (broker or database away)
PRUNE_EVERY = 60.0

_table = outbox_table
_UNSENT = (
    select(_table.c.id, _table.c.task_id, _table.c.task_name, _table.c.queue)
    .add_columns(_table.c.priority, _table.c.message, _table.c.created_at)
    .where(_table.c.sent_at.is_(None))
    .order_by(_table.c.id)
)


class Relay:
    """Publishes what committed transactions left in `hexa_outbox`, through `app`'s broker."""

    def __init__(
        self,
        engine: Engine,
        app: Celery,
        batch_size: int = DEFAULT_BATCH,
        poll: float | None = None,
    ) -> None:
        self.engine, self.app = engine, app
        self.batch_size, self.poll = batch_size, poll
        self._claim = _UNSENT.limit(batch_size).with_for_update(skip_locked=True)
        self._pruned_at = time.monotonic()

    def relay_batch(self) -> int:
        """Publish one batch in one transaction; returns how many rows were published."""
        with self.engine.begin() as conn:
            rows = conn.execute(self._claim).all()
            published, error = self._publish(rows)
            if published:
                done = update(_table).where(_table.c.id.in_(published)).values(sent_at=utcnow())
                conn.execute(done)
        if published:
            oldest = min(row.created_at for row in rows[: len(published)])  # published in order
            log.info("outbox.relayed", count=len(published), oldest_age=_age(oldest))
        if error is not None:
            raise error
        return len(published)

    def _publish(self, rows: Sequence[Any]) -> tuple[list[int], Exception | None]:
        """Publish rows in order; stop at the first failure, keeping what went out."""
        found = publisher(self.app)
        published: list[int] = []
        for row in rows:
            try:
                publish_row(found, row)
            except Exception as error:
                return published, error
            published.append(row.id)
        return published, None

    def prune(self) -> int:
        """Delete rows sent longer than `SENT_ROWS_KEPT` ago (at most once a minute)."""
        if time.monotonic() - self._pruned_at < PRUNE_EVERY:
            return 0
        self._pruned_at = time.monotonic()
        with self.engine.begin() as conn:
            old = delete(_table).where(_table.c.sent_at < utcnow() - SENT_ROWS_KEPT)
            return int(conn.execute(old).rowcount or 0)

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set: batches back to back while full, else wait for a wake-up."""
        with wakeup_for(self.engine) as wakeup:
            poll = self.poll or (POLL_LISTENING if wakeup.kind == "notify" else POLL)
            log.info("outbox.relay.started", waits_for=wakeup.kind, poll=poll)
            while not stop.is_set():
                try:
                    sent = self.relay_batch()
                    self.prune()
                except Exception as error:
                    log.warning("outbox.relay.retry", error=f"{type(error).__name__}: {error}")
                    stop.wait(ERROR_PAUSE)
                    continue
                if sent < self.batch_size:
                    wakeup.wait(poll, stop)
        log.info("outbox.relay.stopped")


def _age(created_at: Any) -> float:
    """Seconds since `created_at` (SQLite gives it back without a time zone: it is UTC)."""
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=utcnow().tzinfo)
    seconds: float = (utcnow() - created_at).total_seconds()
    return round(seconds, 3)
