"""Periodic tasks on the real services: an every-second task, counted in Redis."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import StartWorker
from tests.support.services import unique

pytestmark = pytest.mark.integration

BEAT_PROBE = Path(__file__).parent / "projects" / "beat_probe"


@pytest.fixture
def probe_env(redis_url: str, real_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The worker's environment, with a Redis key of this test's own for the tick count."""
    key = unique("hexa-beat-probe")
    yield {**real_env, "HEXA_PROBE_KEY": key}
    with redis.Redis.from_url(redis_url) as client:
        client.delete(key)


def ticks(redis_url: str, key: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        return int(client.get(key) or 0)


def wait_for_ticks(redis_url: str, key: str, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (seen := ticks(redis_url, key)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


class TestBeat:
    def test_an_every_second_task_runs_twice_within_5s_under_worker_beat(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        probe_env: dict[str, str],
        redis_url: str,
    ) -> None:
        root = project(BEAT_PROBE)
        worker = start_worker(root, probe_env, ["--beat", "--concurrency=1"])
        assert wait_for_ticks(redis_url, probe_env["HEXA_PROBE_KEY"], 2, 5.0) >= 2
        schedule = worker.events("beat.schedule")[0]
        assert list(schedule["entries"]) == ["beat_probe.tick"]
        assert list(root.glob(".hexa/celerybeat-schedule*")), "beat state belongs under .hexa/"

    def test_hexa_beat_sends_to_a_separate_worker(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        probe_env: dict[str, str],
        redis_url: str,
    ) -> None:
        root = project(BEAT_PROBE)
        start_worker(root, probe_env, ["--concurrency=1"])
        beat = start_worker(root, probe_env, command="beat", ready=False)
        beat.wait_for("beat.schedule")
        assert wait_for_ticks(redis_url, probe_env["HEXA_PROBE_KEY"], 2, 5.0) >= 2
        assert not [e for e in beat.events() if e.get("level") == "error"], beat.output()
