"""`hexa worker --pool asyncio` on real workers: thousands in flight, and nothing lost."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from hexa import TaskTimeoutError
from hexa._dead_letters import DeadLetterStore
from hexa._settings import Settings
from tests.conftest import StartWorker
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

PROBE = Path(__file__).parent / "projects" / "aiopool_probe"
DONE = ("SUCCESS", "FAILURE")


def pool(concurrency: int) -> list[str]:
    return ["--pool", "asyncio", "--concurrency", str(concurrency)]


def send(client: Celery, name: str, count: int, *args: Any) -> list[str]:
    return [client.send_task(f"aiopool_probe.{name}", args=list(args)).id for _ in range(count)]


def outcomes(
    client: Celery, ids: list[str], worker: WorkerProcess, timeout: float = 60
) -> dict[str, dict[str, Any]]:
    """Every task's stored result once all are final (one MGET per poll, not a get() each)."""
    backend = client.backend
    keys = [backend.get_key_for_task(task_id) for task_id in ids]
    deadline = time.monotonic() + timeout
    while True:
        metas = [json.loads(raw) if raw else {} for raw in backend.client.mget(keys)]
        if all(meta.get("status") in DONE for meta in metas):
            return dict(zip(ids, metas, strict=True))
        if time.monotonic() > deadline:
            done = sum(meta.get("status") in DONE for meta in metas)
            raise AssertionError(f"{done}/{len(ids)} done in {timeout}s\n{worker.output()}")
        time.sleep(0.1)


def alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of (start, end) spans open at one instant."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


class TestInFlight:
    @pytest.mark.timeout(240)  # publishing 2000 messages takes a while on a loaded machine
    def test_two_thousand_one_second_awaits_are_all_in_flight_at_once(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        batch = uuid.uuid4().hex
        ids = send(plain_client, "gather", 2000, batch, 2000, 1.0)  # queued before the worker
        worker = start_worker(project(PROBE), real_env, pool(2000))
        ready = time.monotonic()

        results = outcomes(plain_client, ids, worker, timeout=90)

        elapsed = time.monotonic() - ready
        assert {meta["status"] for meta in results.values()} == {"SUCCESS"}
        spans = [(m["result"]["started"], m["result"]["ended"]) for m in results.values()]
        assert most_at_once(spans) == 2000  # every 1 s await overlapped every other
        assert len({meta["result"]["pid"] for meta in results.values()}) == 1
        assert elapsed < 60, f"2000 x 1 s took {elapsed:.1f} s after start-up"

    def test_sync_tasks_run_in_pool_threads_never_on_the_loop(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(PROBE), real_env, pool(50))
        loop = outcomes(plain_client, send(plain_client, "where", 1), worker)
        sync = outcomes(plain_client, send(plain_client, "where_sync", 4, 0.5), worker)

        loop_thread = next(iter(loop.values()))["result"]["thread"]
        ran = [meta["result"] for meta in sync.values()]
        assert all(r["name"].startswith("hexa-sync") and not r["loop"] for r in ran), ran
        assert loop_thread not in {r["thread"] for r in ran}
        assert len({r["thread"] for r in ran}) > 1  # four 0.5 s sleeps shared the threads


class TestTaskGuarantees:
    def test_a_timed_out_coroutine_fails_alone_while_its_neighbours_succeed(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(PROBE), real_env, pool(100))
        naps = send(plain_client, "nap", 30, 1.0)
        late = plain_client.send_task("aiopool_probe.overrun", args=[30])

        with pytest.raises(TaskTimeoutError, match=r"timeout=0\.5s"):
            late.get(timeout=30)
        assert {m["status"] for m in outcomes(plain_client, naps, worker).values()} == {"SUCCESS"}
        failed = worker.wait_for("task.failed")
        assert [(e["task_id"], e["timeout"]) for e in failed] == [(late.id, 0.5)]
        assert worker.wait_for("probe.cancelled")[0]["task_id"] == late.id

    def test_log_lines_of_a_hundred_concurrent_tasks_carry_their_own_task_id(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(PROBE), real_env, pool(100))
        ids = [plain_client.send_task("aiopool_probe.tagged", args=[n]).id for n in range(100)]

        results = outcomes(plain_client, ids, worker)

        assert [results[task_id]["result"] for task_id in ids] == list(range(100))
        tagged = worker.wait_for("probe.tagged", count=200)
        by_task: dict[str, list[int]] = {}
        for event in tagged:
            by_task.setdefault(event["task_id"], []).append(event["n"])
        assert by_task == {task_id: [n, n] for n, task_id in enumerate(ids)}
        succeeded = worker.wait_for("task.succeeded", count=100)
        assert sorted(e["task_id"] for e in succeeded) == sorted(ids)

    def test_retries_follow_the_policy_and_exhausted_tasks_become_dead_letters(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(PROBE), real_env, pool(20))
        key = f"aiopool:{uuid.uuid4().hex}"
        recovered = plain_client.send_task("aiopool_probe.flaky", args=[key, 2])
        doomed = plain_client.send_task("aiopool_probe.hopeless", args=[key + ":doomed"])

        assert recovered.get(timeout=30) == "ok after 3"
        with pytest.raises(Exception, match="failure 2"):
            doomed.get(timeout=30)
        retries = worker.wait_for("task.retry", count=3)
        assert [e["attempt"] for e in retries if e["task_id"] == recovered.id] == [1, 2]
        store = DeadLetterStore(Settings.from_env(environ=real_env))
        assert wait_until(lambda: bool(store.letters()), 15)  # published after the result
        letters = store.letters()
        assert [(d.id, d.task) for d in letters] == [(doomed.id, "aiopool_probe.hopeless")]
        assert "failed after 2 attempt(s)" in letters[0].reason


class TestNothingLost:
    def test_sigkill_mid_batch_loses_nothing_once_a_worker_restarts(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        root = project(PROBE)
        first = start_worker(root, real_env, pool(200))
        ids = send(plain_client, "nap", 400, 1.0)
        first.wait_for("task.succeeded", count=50)
        first.kill(signal.SIGKILL)
        first.proc.wait(10)
        assert len(first.events("task.succeeded")) < 400

        second = start_worker(root, real_env, pool(200))

        results = outcomes(plain_client, ids, second)
        assert {meta["status"] for meta in results.values()} == {"SUCCESS"}

    def test_warm_shutdown_finishes_short_tasks_and_redelivers_the_cancelled_one(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        root, env = project(PROBE), {**real_env, "HEXA_SHUTDOWN_GRACE": "2"}
        first = start_worker(root, env, pool(50))
        key = f"aiopool:{uuid.uuid4().hex}"
        slow = plain_client.send_task("aiopool_probe.slow_first_time", args=[key, 60])
        short = send(plain_client, "nap", 10, 1.0)
        first.wait_for("probe.started", count=11)

        first.stop()  # SIGTERM: a warm shutdown

        assert first.proc.returncode == 0, first.output()
        assert first.wait_for("pool.cancelled_at_shutdown")[0]["count"] == 1
        assert first.wait_for("probe.cancelled")[0]["task_id"] == slow.id
        assert {m["status"] for m in outcomes(plain_client, short, first).values()} == {"SUCCESS"}
        assert slow.status == "PENDING"  # neither stored as failed nor acknowledged
        second = start_worker(root, env, pool(50))
        assert slow.get(timeout=30) == 2  # redelivered, second attempt
        assert second.events("pool.cancelled_at_shutdown") == []


class TestMonitoringAndProcesses:
    def test_task_events_can_be_switched_on_by_remote_control(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(PROBE), real_env, pool(100))
        hostname = worker.wait_for("worker.ready")[0]["hostname"]
        seen: dict[str, set[str]] = {}
        receiving = threading.Event()

        def record(event: dict[str, Any]) -> None:
            seen.setdefault(event.get("uuid", ""), set()).add(event["type"])

        def receive() -> None:
            with plain_client.connection_for_read() as conn:
                receiver = plain_client.events.Receiver(conn, handlers={"*": record})
                receiving.set()
                for _ in receiver.itercapture(limit=None, timeout=30, wakeup=False):
                    if stop.is_set():
                        break

        stop = threading.Event()
        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        receiving.wait(10)
        replies = plain_client.control.enable_events(destination=[hostname], reply=True)
        # "already enabled" when the worker sends every event group (hexa's default today)
        assert [reply[hostname]["ok"].replace("already ", "") for reply in replies] == [
            "task events enabled"
        ]

        wanted = {"task-received", "task-started", "task-succeeded"}
        for _ in range(20):  # until the receiver's queue is bound and a task's events arrive
            (first,) = send(plain_client, "nap", 1, 0)
            outcomes(plain_client, [first], worker)
            if wait_until(lambda: wanted <= seen.get(first, set()), 3):  # noqa: B023
                break
        ids = send(plain_client, "nap", 50, 0.1)
        outcomes(plain_client, ids, worker)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(wanted <= seen.get(i, set()) for i in ids):
            time.sleep(0.1)
        stop.set()
        missing = [i for i in ids if not wanted <= seen.get(i, set())]
        assert not missing, f"{len(missing)} tasks lack events, e.g. {seen.get(missing[0])}"

    def test_processes_run_separate_workers_and_stop_together(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(PROBE), real_env, [*pool(50), "--processes", "2"])
        worker.wait_for("worker.ready", count=2)
        nodes = {event["hostname"].split("@")[0] for event in worker.events("worker.ready")}
        assert sorted(node[-2:] for node in nodes) == ["-0", "-1"], nodes

        results = outcomes(plain_client, send(plain_client, "nap", 200, 0.2), worker)

        assert len({meta["result"]["pid"] for meta in results.values()}) == 2
        worker.proc.send_signal(signal.SIGTERM)  # the parent alone: it passes it on
        assert worker.proc.wait(30) == 0, worker.output()
        assert len(worker.events("event_loop.stopped")) >= 2

    def test_children_stop_when_the_parent_is_killed_outright(
        self, project: Callable[..., Path], start_worker: StartWorker, real_env: dict[str, str]
    ) -> None:
        worker = start_worker(project(PROBE), real_env, [*pool(10), "--processes", "2"])
        worker.wait_for("worker.ready", count=2)
        children = [event["pid"] for event in worker.events("worker.process_started")]

        os.kill(worker.proc.pid, signal.SIGKILL)  # the parent alone, with no chance to forward

        assert wait_until(lambda: not any(map(alive, children)), timeout=30), worker.output()
        # Their last lines may still be in the pipe when they are gone.
        orphaned = lambda: len(worker.events("worker.orphaned")) == 2  # noqa: E731
        assert wait_until(orphaned, timeout=10), worker.output()
