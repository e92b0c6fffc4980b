"""`TaskResult[R]`: a typed handle on a published task's outcome."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Generic, TypeVar, cast

import anyio
import anyio.to_thread
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult

from hexa._exceptions import ResultBackendError

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
        """The task's return value; re-raises its exception when it failed.

        Raises `ResultBackendError` (naming the backend, password masked) when the result
        store cannot be read, and Celery's `TimeoutError` when the task is not done in time.
        """
        try:
            value = self._async_result.get(timeout=timeout, propagate=False)
        except CeleryTimeoutError:
            raise
        except Exception as error:  # propagate=False: only reading the backend raises here
            raise backend_error(self._async_result, error) from None
        if propagate:
            self._async_result.maybe_throw()
        return cast(R, value)

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


def backend_error(result: AsyncResult[Any], error: BaseException) -> ResultBackendError:
    """The error a caller sees when the result store is down: which store, and what to do."""
    backend = result.backend
    where = backend.as_uri() if hasattr(backend, "as_uri") else type(backend).__name__
    detail = " ".join(f"{type(error).__name__}: {error}".split())
    return ResultBackendError(
        f"cannot read the result of task {result.id} from the result backend {where} "
        f"({detail}); the task itself may have run. Check that the result store is up and "
        "REDIS_URL names it, then ask again with `hexa status ID`"
    )
