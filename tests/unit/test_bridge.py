"""`EventLoopBridge`: one persistent loop per process, reached from any number of threads."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import structlog

from hexa import TaskTimeoutError
from hexa._bridge import EventLoopBridge

#: Which process first saw each loop: a loop started in a forked child is a new key.
_owners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = weakref.WeakKeyDictionary()


async def loop_owner() -> int:
    return _owners.setdefault(asyncio.get_running_loop(), os.getpid())


async def current_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


@pytest.fixture
def bridge() -> Iterator[EventLoopBridge]:
    bridge = EventLoopBridge()
    yield bridge
    bridge.stop()


class TestEventLoopBridge:
    def test_calls_share_one_loop_that_stays_open_between_them(
        self, bridge: EventLoopBridge
    ) -> None:
        async def make_future() -> asyncio.Future[int]:
            return asyncio.get_running_loop().create_future()

        async def resolve(future: asyncio.Future[int]) -> int:
            future.set_result(7)
            return await future  # fails on any loop but the one that made it

        future = bridge.run_sync(make_future)
        assert bridge.run_sync(resolve, (future,)) == 7
        loop = bridge.run_sync(current_loop)
        assert loop is future.get_loop()
        assert not loop.is_closed()

    def test_threads_waiting_at_once_all_run_on_the_one_loop(self, bridge: EventLoopBridge) -> None:
        callers, arrived, loops = 8, [], set()
        everyone = threading.Event()

        async def meet() -> None:
            # Returns only once every caller is inside: impossible one call at a time.
            arrived.append(1)
            loops.add(id(asyncio.get_running_loop()))
            while len(arrived) < callers:
                await anyio.sleep(0.01)
            everyone.set()

        threads = [
            threading.Thread(target=bridge.run_sync, args=(meet, (), None, 30))
            for _ in range(callers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert everyone.is_set()
        assert len(loops) == 1

    def test_timeout_cancels_the_coroutine_and_raises_task_timeout_error(
        self, bridge: EventLoopBridge
    ) -> None:
        seen: list[str] = []

        async def hang() -> None:
            try:
                await anyio.sleep(30)
            except anyio.get_cancelled_exc_class():
                seen.append("cancelled")
                raise

        with pytest.raises(TaskTimeoutError, match=r"timeout=0\.05s") as info:
            bridge.run_sync(hang, timeout=0.05)
        assert isinstance(info.value, TimeoutError)
        assert seen == ["cancelled"]
        assert bridge.run_sync(current_loop).is_running()  # the loop survives a timeout

    def test_a_timeout_error_from_the_body_itself_passes_through(
        self, bridge: EventLoopBridge
    ) -> None:
        async def client_gives_up() -> None:
            raise TimeoutError("the client's own timeout")

        with pytest.raises(TimeoutError, match="client's own") as info:
            bridge.run_sync(client_gives_up, timeout=30)
        assert not isinstance(info.value, TaskTimeoutError)

    def test_caller_log_context_reaches_the_coroutine_and_nothing_leaks_back(
        self, bridge: EventLoopBridge
    ) -> None:
        async def bind_and_read() -> dict[str, Any]:
            seen = structlog.contextvars.get_contextvars()
            structlog.contextvars.bind_contextvars(inside="only here")
            return seen

        with structlog.contextvars.bound_contextvars(task_id="t-1", task="probe.x"):
            seen = bridge.run_sync(bind_and_read)
            assert "inside" not in structlog.contextvars.get_contextvars()
        assert seen == {"task_id": "t-1", "task": "probe.x"}
        assert bridge.run_sync(bind_and_read) == {}  # nor into the next call

    def test_waiting_from_the_loop_thread_itself_raises_instead_of_hanging(
        self, bridge: EventLoopBridge
    ) -> None:
        async def nested() -> None:
            bridge.run_sync(current_loop)

        with pytest.raises(RuntimeError, match=r"await task\(\.\.\.\)"):
            bridge.run_sync(nested)

    def test_stop_is_idempotent_and_a_later_call_starts_a_new_loop(
        self, bridge: EventLoopBridge
    ) -> None:
        bridge.stop()  # never started: nothing to do
        first = bridge.run_sync(current_loop)
        bridge.stop()
        bridge.stop()
        assert not bridge.running
        assert first.is_closed()
        second = bridge.run_sync(current_loop)
        assert second is not first
        assert bridge.running

    def test_stop_cancels_coroutines_left_on_the_loop(self, bridge: EventLoopBridge) -> None:
        seen: list[str] = []

        async def background() -> None:
            try:
                await anyio.sleep(30)
            finally:
                seen.append("unwound")

        async def start_background() -> None:
            asyncio.get_running_loop().create_task(background())
            await anyio.sleep(0)

        bridge.run_sync(start_background)
        bridge.stop()
        assert seen == ["unwound"]

    @pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
    def test_a_forked_child_starts_its_own_loop(self, bridge: EventLoopBridge) -> None:
        assert bridge.run_sync(loop_owner) == os.getpid()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, then leave without running pytest's clean-up
            try:
                os.close(read_end)
                signal.alarm(10)  # the parent's loop thread does not exist here: never hang
                owners = [bridge.run_sync(loop_owner), bridge.run_sync(loop_owner)]
                os.write(write_end, json.dumps([os.getpid(), owners]).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as reader:
            report = reader.read()
        os.waitpid(pid, 0)
        child_pid, owners = json.loads(report)
        assert child_pid == pid
        assert owners == [pid, pid]  # a new loop, first seen by the child, then kept
        assert bridge.run_sync(loop_owner) == os.getpid()  # the parent's loop is untouched
