"""Fault-injection fixtures: our own RabbitMQ node and Redis, recorded runs, the report table."""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis

import hexa
from hexa._app import HexaCelery, build_app
from tests.chaos.services import OwnRabbitMQ, OwnRedis

CHAOS_PROJECT = Path(__file__).parent / "projects" / "chaos"


@attrs.define
class Row:
    scenario: str
    sent: int
    completed: int
    lost: int
    duplicated: int
    recovery: float | None
    note: str = ""


_rows: list[Row] = []


class Records:
    """The Redis hash the `chaos.record` tasks count their runs in, one field per index."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.key = f"hexa-chaos-{uuid.uuid4().hex[:10]}"

    def runs(self) -> dict[int, int]:
        raw: dict[Any, Any] = self.client.hgetall(self.key)
        return {int(k): int(v) for k, v in raw.items()}

    def total(self) -> int:
        return sum(self.runs().values())

    def wait(self, done: Any, timeout: float, what: str) -> float:
        """Poll until `done(runs)` holds; returns when (monotonic), or fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self.runs()):
                return time.monotonic()
            time.sleep(0.05)
        runs = self.runs()
        raise AssertionError(f"{what} not reached in {timeout}s: {len(runs)} indices recorded")

    def row(self, scenario: str, sent: list[int], recovery: float | None, note: str = "") -> Row:
        runs = self.runs()
        wanted = set(sent)
        done = wanted & runs.keys()
        duplicated = sum(runs[i] - 1 for i in done)
        row = Row(scenario, len(wanted), len(done), len(wanted - done), duplicated, recovery, note)
        _rows.append(row)
        return row


@pytest.fixture
def records(redis_url: str) -> Iterator[Records]:
    found = Records(redis_url)
    yield found
    found.client.delete(found.key)
    found.client.close()


def report(row: Row) -> Row:
    """Add a row that does not come from `Records` (e.g. the malformed-message scenario)."""
    _rows.append(row)
    return row


@pytest.fixture
def client() -> Iterator[Callable[[dict[str, str]], HexaCelery]]:
    """Publishing apps for given environments, closed at the end."""
    made: list[HexaCelery] = []

    def make(env: dict[str, str]) -> HexaCelery:
        made.append(build_app(hexa.Settings.from_env(environ=env)))
        return made[-1]

    yield make
    for app in made:
        app.close()
    gc.collect()  # AsyncResult.__del__ talks to Redis: let it run while Redis is up


@pytest.fixture(scope="session")
def own_rabbitmq() -> Iterator[OwnRabbitMQ]:
    node = OwnRabbitMQ().start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis(password=f"chaos-redis-{uuid.uuid4().hex[:12]}").start()
    yield server
    gc.collect()  # results of its tests unsubscribe from it when collected: while it is up
    server.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _rows:
        return
    header = ("scenario", "sent", "completed", "lost", "duplicated", "recovery", "note")
    lines = [
        (
            r.scenario,
            str(r.sent),
            str(r.completed),
            str(r.lost),
            str(r.duplicated),
            "-" if r.recovery is None else f"{r.recovery:.2f}s",
            r.note,
        )
        for r in _rows
    ]
    widths = [max(len(x[i]) for x in [header, *lines]) for i in range(len(header))]
    terminalreporter.section("chaos: nothing lost")
    for line in [header, tuple("-" * w for w in widths), *lines]:
        terminalreporter.write_line(
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True))
        )
