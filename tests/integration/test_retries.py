"""Retry policies on a real worker: attempts counted in Redis, delays measured between them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from tests.conftest import StartWorker
from tests.support.services import unique
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

RETRY_PROBE = Path(__file__).parent / "projects" / "retry_probe"


@pytest.fixture
def attempts(redis_url: str) -> Iterator[tuple[str, Callable[[], list[float]]]]:
    """A Redis key of this test's own, and a reader of the attempts' start times."""
    key = unique("hexa-retry-probe")
    with redis.Redis.from_url(redis_url) as client:

        def times() -> list[float]:
            return [float(t) for t in client.lrange(f"{key}:times", 0, -1)]

        yield key, times
        client.delete(f"{key}:times")


@pytest.fixture
def worker(
    project: Callable[..., Path], start_worker: StartWorker, real_env: dict[str, str]
) -> WorkerProcess:
    return start_worker(project(RETRY_PROBE), real_env, ["--concurrency=1"])


def events_of(worker: WorkerProcess, name: str, task_id: str) -> list[dict[str, Any]]:
    return [e for e in worker.events(name) if e.get("task_id") == task_id]


class TestRetriesOnARealWorker:
    def test_two_listed_failures_then_success_take_three_attempts_and_the_declared_delays(
        self, worker: WorkerProcess, plain_client: Celery, attempts: Any
    ) -> None:
        key, times = attempts
        result = plain_client.send_task("retry_probe.flaky", args=[key, 2])
        assert result.get(timeout=30) == "ok after 3"
        assert result.status == "SUCCESS"
        started = times()
        assert len(started) == 3
        gaps = [b - a for a, b in pairwise(started)]
        assert gaps[0] >= 1.0, gaps  # Backoff(base=1, jitter=False): 1 s, then 2 s
        assert gaps[1] >= 2.0, gaps
        retries = events_of(worker, "task.retry", result.id)
        assert [(e["attempt"], e["delay"]) for e in retries] == [(1, 1), (2, 2)]
        assert [e["error"] for e in retries] == ["Flaky: failure 1", "Flaky: failure 2"]

    def test_always_failing_ends_failure_after_max_retries_plus_one_attempts(
        self, worker: WorkerProcess, plain_client: Celery, attempts: Any
    ) -> None:
        key, times = attempts
        result = plain_client.send_task("retry_probe.always_failing", args=[key])
        error = result.get(timeout=30, propagate=False)
        assert result.status == "FAILURE"
        assert (type(error).__name__, str(error)) == ("Flaky", "failure 3")  # the last error
        assert len(times()) == 3  # FixedDelay(max_retries=2)
        failed = worker.wait_for("task.failed")
        assert [(e["attempts"], e["error"]) for e in failed if e["task_id"] == result.id] == [
            (3, "Flaky: failure 3")
        ]
        assert [e["delay"] for e in events_of(worker, "task.retry", result.id)] == [1, 1]

    def test_an_unlisted_error_fails_after_one_attempt(
        self, worker: WorkerProcess, plain_client: Celery, attempts: Any
    ) -> None:
        key, times = attempts
        result = plain_client.send_task("retry_probe.unlisted", args=[key])
        with pytest.raises(LookupError, match="not listed, attempt 1"):
            result.get(timeout=30)
        assert len(times()) == 1
        assert events_of(worker, "task.retry", result.id) == []
        failed = worker.wait_for("task.failed", task_id=result.id)
        assert failed[0]["attempts"] == 1

    def test_a_bound_task_sees_its_retry_count(
        self, worker: WorkerProcess, plain_client: Celery, attempts: Any
    ) -> None:
        key, times = attempts
        result = plain_client.send_task("retry_probe.bound", args=[key])
        assert result.get(timeout=30) == 1
        assert len(times()) == 2
