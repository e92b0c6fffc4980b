"""Async tasks on real workers: one persistent loop per process, on every pool."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.exceptions import TimeoutError as CeleryTimeoutError

from hexa import TaskTimeoutError
from tests.conftest import StartWorker
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

PROBE = Path(__file__).parent / "projects" / "async_probe"
#: A sync task with `timeout=`: the threads and solo pools refuse to start with it.
SYNC_PROBE = Path(__file__).parent / "projects" / "sync_probe"
#: What a loop closed under running tasks, or a client outliving its loop, would print.
NOISE = (
    "Task was destroyed but it is pending",
    "Event loop is closed",
    "Task exception was never retrieved",
    "was never awaited",
    "unclosed event loop",
)


def send_all(worker: WorkerProcess, client: Celery, name: str, count: int, *args: Any) -> list[Any]:
    """Send `count` tasks at once, then wait for every result."""
    results = [client.send_task(f"async_probe.{name}", args=list(args)) for _ in range(count)]
    try:
        return [result.get(timeout=30) for result in results]
    except CeleryTimeoutError:
        states = [result.state for result in results]
        raise AssertionError(f"{name}: states {states}\n{worker.output()}") from None


def assert_stops_cleanly(worker: WorkerProcess, pids: set[int]) -> None:
    """SIGTERM: every process that ran a task stops its loop, and nothing complains."""
    worker.stop()
    assert worker.proc.returncode == 0, worker.output()
    stopped = {event["pid"] for event in worker.events("event_loop.stopped")}
    assert pids <= stopped, worker.output()
    for noise in NOISE:
        assert noise not in worker.output(), worker.output()


class TestPersistentLoop:
    def test_prefork_children_each_keep_one_loop_and_one_client(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        root = project(PROBE, SYNC_PROBE)
        worker = start_worker(root, real_env, ["--pool=prefork", "--concurrency=2"])
        is_async = {e["name"]: e.get("is_async") for e in worker.events("task.registered")}
        assert (is_async["async_probe.ping"], is_async["sync_probe.overrun"]) == (True, None)

        replies = send_all(worker, plain_client, "ping", 8)

        assert {reply["reply"] for reply in replies} == {"+PONG"}
        by_pid: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for reply in replies:
            by_pid[reply["pid"]].append(reply)
        assert max(len(runs) for runs in by_pid.values()) >= 2  # 8 tasks, 2 processes
        for runs in by_pid.values():
            assert len({run["loop"] for run in runs}) == 1  # one loop per process
            assert {run["created"] for run in runs} == {1}  # one client, reused
            assert sorted(run["uses"] for run in runs) == list(range(1, len(runs) + 1))
        assert_stops_cleanly(worker, set(by_pid))

    def test_threads_pool_keeps_twenty_sleeping_tasks_in_flight_on_one_loop(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(PROBE), real_env, ["--pool=threads", "--concurrency=20"])

        started = time.monotonic()
        naps = send_all(worker, plain_client, "nap", 20, 0.5)
        elapsed = time.monotonic() - started

        assert elapsed < 4.0, f"20 x 0.5 s took {elapsed:.2f} s: they did not overlap"
        assert len({(nap["pid"], nap["loop"]) for nap in naps}) == 1
        pings = send_all(worker, plain_client, "ping", 20)  # 20 at once share the one client
        assert {(ping["reply"], ping["created"]) for ping in pings} == {("+PONG", 1)}
        assert {ping["loop"] for ping in pings} == {naps[0]["loop"]}
        sums = [plain_client.send_task("async_probe.add", args=[n, 0]) for n in range(20)]
        assert [result.get(timeout=30) for result in sums] == list(range(20))
        entered = {e["task_id"]: e["a"] for e in worker.wait_for("probe.entered", count=20)}
        assert entered == {result.id: n for n, result in enumerate(sums)}  # no crossed contexts
        assert_stops_cleanly(worker, {naps[0]["pid"]})


class TestTimeouts:
    @pytest.mark.parametrize("pool", ["threads", "solo", "prefork"])
    def test_async_timeout_cancels_the_coroutine_and_the_failure_names_it(
        self,
        pool: str,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(PROBE), real_env, [f"--pool={pool}", "--concurrency=1"])
        result = plain_client.send_task("async_probe.overrun", args=[30])

        with pytest.raises(TaskTimeoutError, match=r"timeout=0\.5s"):
            result.get(timeout=20)

        failed = worker.wait_for("task.failed")[0]
        assert failed["task_id"] == result.id
        assert failed["timeout"] == 0.5
        assert failed["error"].startswith("TaskTimeoutError")
        cancelled = worker.wait_for("probe.cancelled")[0]  # anyio cancelled the body
        assert cancelled["task_id"] == result.id
        assert send_all(worker, plain_client, "ping", 1)[0]["reply"] == "+PONG"  # the loop lives on

    def test_prefork_applies_celerys_time_limits_to_sync_tasks_and_blocked_loops(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        root = project(PROBE, SYNC_PROBE)
        worker = start_worker(root, real_env, ["--pool=prefork", "--concurrency=2"])
        sync = plain_client.send_task("sync_probe.overrun", args=[30])
        blocked = plain_client.send_task("async_probe.block_loop", args=[30])

        with pytest.raises(SoftTimeLimitExceeded):
            sync.get(timeout=20)
        with pytest.raises(TimeLimitExceeded):  # killed at timeout + HARD_LIMIT_GRACE
            blocked.get(timeout=20)

        failed = worker.wait_for("task.failed")[0]
        assert failed["task_id"] == sync.id
        assert failed["timeout"] == 0.5
        assert failed["error"].startswith("SoftTimeLimitExceeded")


class TestTaskBody:
    def test_logs_carry_the_task_and_wrong_arguments_never_enter_the_body(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(PROBE), real_env, ["--pool=solo"])
        good = plain_client.send_task("async_probe.add", args=[2, 3])
        bad = plain_client.send_task("async_probe.add", args=[1, 2, 3])

        assert good.get(timeout=20) == 5
        with pytest.raises(TypeError, match="positional argument"):
            bad.get(timeout=20)

        entered = worker.wait_for("probe.entered")
        assert [(e["task_id"], e["task"]) for e in entered] == [(good.id, "async_probe.add")]
        failed = worker.wait_for("task.failed")[0]
        assert (failed["task_id"], failed["error"][:9]) == (bad.id, "TypeError")
