"""What the outbox tests share: a PostgreSQL database of their own, relays, run counts."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, make_url

from tests.support.services import require, unique
from tests.support.worker import WorkerProcess

POSTGRES_URL = os.environ.get(
    "HEXA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
OUTBOX_PROBE = Path(__file__).parents[1] / "integration" / "projects" / "outbox_probe"


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the real PostgreSQL (its URL), dropped afterwards."""
    admin = create_engine(require(POSTGRES_URL, "PostgreSQL"), isolation_level="AUTOCOMMIT")
    name = unique("hexa_outbox").replace("-", "_")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def start_relay(cwd: Path, env: dict[str, str], url: str, *args: str) -> WorkerProcess:
    """`hexa outbox relay --url URL` in its own process group, once it says it started."""
    relay = WorkerProcess(cwd, env, ["relay", "--url", url, *args], command="outbox")
    relay.wait_for("outbox.relay.started")
    return relay


def relayed(relay: WorkerProcess) -> int:
    """How many messages this relay process logged as published."""
    return sum(int(event["count"]) for event in relay.events("outbox.relayed"))


class Runs:
    """The Redis hash the `outbox_probe.record` task counts its runs in."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.key = unique("hexa-outbox-runs")

    def counts(self) -> dict[int, int]:
        raw: dict[Any, Any] = self.client.hgetall(self.key)
        return {int(k): int(v) for k, v in raw.items()}

    def wait(self, done: Callable[[dict[int, int]], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self.counts()):
                return
            time.sleep(0.05)
        raise AssertionError(f"{what} not reached in {timeout}s: {len(self.counts())} ran")

    def close(self) -> None:
        self.client.delete(self.key)
        self.client.close()
