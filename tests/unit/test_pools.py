"""The asyncio pool's parts, in process: loop traces, consumer-thread calls, process argv."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest
import structlog

from hexa._app import HexaCelery
from hexa._bridge import bridge
from hexa._definitions import definitions
from hexa._exceptions import ConfigurationError
from hexa._pools._consumer_thread import ConsumerThreadCalls
from hexa._pools._greenlets import CancelledAtShutdown, LoopTraces
from hexa._pools.asyncio import _awaits, _check_prefetch, shutdown_grace
from hexa._pools.processes import child_argv, node_name
from hexa._settings import Settings
from hexa._worker import register_task


@pytest.fixture
def host() -> LoopTraces:
    finished = threading.Semaphore(0)
    host = LoopTraces(finished.release)
    host.finished = finished  # type: ignore[attr-defined]
    host.start()
    return host


def loop_thread_name() -> str:
    return str(bridge.portal().call(lambda: threading.current_thread().name))


def run_traces(host: LoopTraces, traces: list[Callable[[], None]]) -> None:
    for trace in traces:
        host.spawn(trace)
    for _ in traces:
        assert host.finished.acquire(timeout=30)  # type: ignore[attr-defined]


class TestLoopTraces:
    def test_traces_on_one_thread_wait_for_their_coroutines_at_the_same_time(
        self, host: LoopTraces
    ) -> None:
        callers, arrived, seen = 20, [], []

        async def meet(task_id: str) -> str:
            # Returns only once every caller is inside: impossible one trace at a time.
            arrived.append(task_id)
            while len(arrived) < callers:
                await anyio.sleep(0.01)
            return str(structlog.contextvars.get_contextvars()["task_id"])

        def trace(task_id: str) -> None:
            structlog.contextvars.bind_contextvars(task_id=task_id)
            inside = bridge.run_sync(meet, (task_id,))
            after = structlog.contextvars.get_contextvars()["task_id"]
            seen.append((task_id, inside, after, threading.current_thread().name))

        run_traces(host, [lambda n=n: trace(f"t{n}") for n in range(callers)])

        on_loop = loop_thread_name()
        assert sorted(seen) == sorted((f"t{n}", f"t{n}", f"t{n}", on_loop) for n in range(20))

    def test_cancel_all_ends_suspended_traces_with_cancelled_at_shutdown(
        self, host: LoopTraces
    ) -> None:
        ended: list[str] = []
        started = threading.Semaphore(0)

        async def forever() -> None:
            started.release()
            await anyio.sleep(60)

        def trace() -> None:
            try:
                bridge.run_sync(forever)
            except CancelledAtShutdown:
                ended.append("cancelled at shutdown")

        for _ in range(3):
            host.spawn(trace)
        for _ in range(3):
            assert started.acquire(timeout=10)
        assert host.cancel_all() == 3
        for _ in range(3):
            assert host.finished.acquire(timeout=10)  # type: ignore[attr-defined]
        assert ended == ["cancelled at shutdown"] * 3

    def test_errors_and_timeouts_of_the_coroutine_raise_in_the_trace(
        self, host: LoopTraces
    ) -> None:
        outcomes: list[Any] = []

        async def fail() -> None:
            raise LookupError("from the coroutine")

        async def hang() -> None:
            await anyio.sleep(60)

        def trace(func: Any, timeout: float | None) -> None:
            try:
                bridge.run_sync(func, timeout=timeout)
            except Exception as error:
                outcomes.append(type(error).__name__)

        run_traces(host, [lambda: trace(fail, None), lambda: trace(hang, 0.05)])
        assert sorted(outcomes) == ["LookupError", "TaskTimeoutError"]

    def test_a_trace_that_raises_leaves_the_loop_serving_the_others(
        self, host: LoopTraces
    ) -> None:
        ran: list[str] = []

        def broken() -> None:
            raise RuntimeError("a bug in a trace")

        run_traces(host, [broken, lambda: ran.append("after")])
        assert ran == ["after"]


class FakeHub:
    def __init__(self) -> None:
        self.readers: dict[int, Callable[[], None]] = {}

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        self.readers[fd] = callback

    def remove_reader(self, fd: int) -> None:
        self.readers.pop(fd)


class TestConsumerThreadCalls:
    def test_without_a_hub_calls_run_where_they_are_posted(self) -> None:
        calls, ran = ConsumerThreadCalls(), []
        calls.post(ran.append, 1)
        assert ran == [1]
        calls.close()

    def test_with_a_hub_calls_wait_for_it_and_run_in_order(self) -> None:
        calls, hub, ran = ConsumerThreadCalls(), FakeHub(), []
        calls.register(hub)
        posters = [threading.Thread(target=calls.post, args=(ran.append, n)) for n in range(5)]
        for poster in posters:
            poster.start()
            poster.join()
        assert ran == []
        (run,) = hub.readers.values()
        run()
        assert ran == [0, 1, 2, 3, 4]
        calls.post(ran.append, 5)  # a wake-up after a run is not lost
        run()
        assert ran[-1] == 5
        calls.close()
        assert hub.readers == {}


async def fetch(n: int) -> int:
    return n


def compute(n: int) -> int:
    return n


class TestWhichTasksAwait:
    def test_the_pool_tells_async_tasks_from_sync_ones_as_discovery_registers_them(
        self, tmp_path: Any
    ) -> None:
        app = HexaCelery(Settings.from_env(environ={}, cwd=tmp_path))
        for each in definitions({"probe_tasks": {"fetch": fetch, "compute": compute}}):
            register_task(app, each)
        assert _awaits(app.tasks["probe.fetch"])
        assert not _awaits(app.tasks["probe.compute"])
        app.close()


class TestPrefetch:
    def test_concurrency_times_multiplier_must_fit_the_amqp_prefetch_count(self) -> None:
        class Conf:
            worker_prefetch_multiplier = 4

        _check_prefetch(16383, Conf())
        with pytest.raises(ConfigurationError, match="HEXA_PREFETCH_MULTIPLIER=1"):
            _check_prefetch(20000, Conf())


class TestShutdownGrace:
    def test_default_and_given_seconds(self) -> None:
        assert shutdown_grace({}) == 20.0
        assert shutdown_grace({"HEXA_SHUTDOWN_GRACE": "2.5"}) == 2.5

    @pytest.mark.parametrize("value", ["-1", "soon"])
    def test_a_bad_value_names_the_variable(self, value: str) -> None:
        with pytest.raises(ConfigurationError, match="HEXA_SHUTDOWN_GRACE"):
            shutdown_grace({"HEXA_SHUTDOWN_GRACE": value})


class TestProcesses:
    def test_node_names_get_the_process_index(self) -> None:
        assert node_name(None, 1) == "celery-1@%h"
        assert node_name("erp@%h", 0) == "erp-0@%h"
        assert node_name("box", 2) == "celery-2@box"

    def test_children_run_one_process_each_and_beat_only_in_the_first(self) -> None:
        argv = ["worker", "--processes", "2", "-B", "--pool", "asyncio"]
        first, second = child_argv(argv, 0, "w@%h"), child_argv(argv, 1, "w@%h")
        assert first[-2:] == ["--processes=1", "--hostname=w-0@%h"]
        assert "-B" in first
        assert "-B" not in second
        assert second[-2:] == ["--processes=1", "--hostname=w-1@%h"]

    def test_each_child_serves_metrics_on_its_own_port(self) -> None:
        assert child_argv(["worker"], 2, None, 9100)[-1] == "--metrics-port=9102"
