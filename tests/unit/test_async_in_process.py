"""Async tasks called in this process: from sync code, from a running loop, through Celery."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from celery import Celery

from hexa import AsyncTask, TaskTimeoutError
from hexa._definitions import TaskDefinition
from hexa._spec import TaskSpec
from hexa._worker import HARD_LIMIT_GRACE, register_task

#: A loop-bound resource cached at module level, as an async client would be.
_cache: dict[str, Any] = {}


async def add(a: int, b: int = 0) -> int:
    return a + b


async def cached_future_value() -> tuple[int, int]:
    """Reuses a future made by the first call: only possible on the loop that made it."""
    loop = asyncio.get_running_loop()
    future = _cache.setdefault("future", loop.create_future())
    if not future.done():
        future.set_result(id(loop))
    return await future, id(loop)


async def hang() -> None:
    await anyio.sleep(30)


def async_task(func: Any, timeout: float | None = None) -> AsyncTask[Any, Any]:
    return AsyncTask(TaskSpec(func=func, module="probe", name=func.__name__, timeout=timeout))


@pytest.fixture
def app() -> Iterator[Celery]:
    """A Celery app holding hexa's `probe.add`; `memory://` so nothing leaves the process."""
    app = Celery("probe", broker="memory://", backend="cache+memory://", set_as_current=False)
    register_task(app, TaskDefinition(name="probe.add", func=add, service="probe_tasks"))
    yield app
    app.close()


class TestInProcessCalls:
    def test_run_sync_from_sync_code_keeps_one_loop_across_calls(self) -> None:
        task = async_task(cached_future_value)
        first_loop, loop_now = task.run_sync()
        assert first_loop == loop_now
        assert task.run_sync() == (first_loop, first_loop)

    def test_run_sync_applies_the_declared_timeout(self) -> None:
        with pytest.raises(TaskTimeoutError, match=r"timeout=0\.05s"):
            async_task(hang, timeout=0.05).run_sync()

    def test_awaiting_the_task_inside_a_running_loop_runs_it_there(self) -> None:
        task = async_task(add)

        async def endpoint() -> int:
            return await task(2, b=3)

        assert anyio.run(endpoint) == 5

    def test_celery_task_object_called_inside_a_running_loop_runs_on_the_bridge(
        self, app: Celery
    ) -> None:
        async def endpoint() -> int:
            result: int = app.tasks["probe.add"](2, 3)
            return result

        assert anyio.run(endpoint) == 5

    def test_celery_refuses_wrong_arguments_before_publishing(self, app: Celery) -> None:
        # Celery checks apply_async() against the entry point's signature; a bare
        # (*args, **kwargs) wrapper would let this through to the broker.
        with pytest.raises(TypeError, match="argument"):
            app.tasks["probe.add"].delay(1, 2, 3)
        with pytest.raises(TypeError, match="argument"):
            app.tasks["probe.add"].delay(c=1)


class TestAsyncTimeLimits:
    def test_bridge_cancels_at_the_timeout_and_prefork_kills_later_as_a_backstop(
        self, app: Celery
    ) -> None:
        definition = TaskDefinition(name="probe.hang", func=hang, service="probe", timeout=2)
        register_task(app, definition)
        task = app.tasks["probe.hang"]
        # A soft limit would raise in the waiting thread and leave the coroutine running.
        assert task.soft_time_limit is None
        assert task.time_limit == 2 + HARD_LIMIT_GRACE
