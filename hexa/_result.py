"""`TaskResult[R]`: a typed handle on a published task's outcome."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Generic, TypeVar, cast

import anyio
import anyio.to_thread
from celery.result import AsyncResult

R = TypeVar("R")


class TaskResult(Generic[R]):
    """The outcome of one published task.

    `get()` blocks the calling thread; `await result` (or `await result.wait()`) waits in a
    worker thread so an event loop keeps serving while the task runs.
    """

    __slots__ = ("_async_result",)

    def __init__(self, async_result: AsyncResult[Any]) -> None:
        self._async_result = async_result

    @property
    def id(self) -> str:
        return str(self._async_result.id)

    @property
    def status(self) -> str:
        """PENDING, STARTED, RETRY, SUCCESS or FAILURE (Celery's states)."""
        return cast(str, self._async_result.status)

    def ready(self) -> bool:
        return bool(self._async_result.ready())

    def get(self, timeout: float | None = None, *, propagate: bool = True) -> R:
        """The task's return value; re-raises its exception when it failed."""
        return cast(R, self._async_result.get(timeout=timeout, propagate=propagate))

    async def wait(self, timeout: float | None = None) -> R:
        """Like `get()`, without blocking the caller's event loop."""
        return await anyio.to_thread.run_sync(self.get, timeout, abandon_on_cancel=True)

    def __await__(self) -> Generator[Any, None, R]:
        return self.wait().__await__()

    @property
    def celery_result(self) -> AsyncResult[Any]:
        """The underlying Celery `AsyncResult`, for Celery APIs that want one."""
        return self._async_result

    def __repr__(self) -> str:
        return f"<TaskResult {self.id}>"
