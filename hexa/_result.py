"""`TaskResult[R]`: a typed handle on a published task's outcome.

The handle is cheap: it holds the task id and subscribes to (or reads) the result only when
someone asks for it, so a burst of `.send()` calls costs no result-backend round trips and the
first `.get()` after the burst does not queue behind hundreds of subscriptions.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Generic, TypeVar, cast

import anyio
import anyio.to_thread
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult

from hexa._exceptions import HexaError, ResultBackendError, error_text

R = TypeVar("R")


class ResultNotStoredError(HexaError):
    """`.get()` on a task that stores no result (annotated `-> None`): nothing will arrive."""


class TaskResult(Generic[R]):
    """The outcome of one published task.

    `get()` blocks the calling thread; `await result` (or `await result.wait()`) waits in a
    worker thread so an event loop keeps serving while the task runs.
    """

    __slots__ = ("_app", "_async_result", "_id", "_stored", "_task_name")

    def __init__(
        self,
        task: AsyncResult[Any] | str,
        app: Celery | None = None,
        *,
        task_name: str | None = None,
        stored: bool = True,
    ) -> None:
        self._app = app
        if isinstance(task, AsyncResult):
            self._async_result: AsyncResult[Any] | None = task
            self._id = str(task.id)
        else:
            self._async_result, self._id = None, task
        self._task_name = task_name
        self._stored = stored

    @property
    def id(self) -> str:
        return self._id

    @property
    def stored(self) -> bool:
        """False when the task stores no result (annotated `-> None`); `get()` then raises."""
        return self._stored

    @property
    def celery_result(self) -> AsyncResult[Any]:
        """The underlying Celery `AsyncResult`, for Celery APIs that want one (made on demand)."""
        if self._async_result is None:
            if self._app is None:
                self._async_result = AsyncResult(self._id)
            else:
                self._async_result = self._app.AsyncResult(self._id)
        return self._async_result

    @property
    def status(self) -> str:
        """PENDING, STARTED, RETRY, SUCCESS or FAILURE (Celery's states).

        A task that stores no result (`-> None`) stays PENDING after it succeeded; its
        failures are stored (FAILURE).
        """
        return cast(str, self.celery_result.status)

    def ready(self) -> bool:
        return bool(self.celery_result.ready())

    def get(self, timeout: float | None = None, *, propagate: bool = True) -> R:
        """The task's return value; re-raises its exception when it failed.

        Raises `ResultNotStoredError` at once for a task annotated `-> None` (it stores no
        result, so waiting would never end), `ResultBackendError` (naming the backend,
        password masked) when the result store cannot be read, and Celery's `TimeoutError`
        when the task is not done in time.
        """
        if not self._stored:
            raise self._not_stored()
        result = self.celery_result  # subscribes now, not at publish
        try:
            value = result.get(timeout=timeout, propagate=False)
        except CeleryTimeoutError:
            raise
        except Exception as error:  # propagate=False: only reading the backend raises here
            raise backend_error(result, error) from None
        if propagate:
            result.maybe_throw()
        return cast(R, value)

    def _not_stored(self) -> ResultNotStoredError:
        name = self._task_name or "this task"
        return ResultNotStoredError(
            f"{name} (task id {self._id}) is annotated `-> None`, so hexa publishes it "
            "without storing a result and there is nothing to wait for; declare a return "
            "type (e.g. `-> bool`) and return a value to be able to wait for it"
        )

    async def wait(self, timeout: float | None = None) -> R:
        """Like `get()`, without blocking the caller's event loop."""
        return await anyio.to_thread.run_sync(self.get, timeout, abandon_on_cancel=True)

    def __await__(self) -> Generator[Any, None, R]:
        return self.wait().__await__()

    def __repr__(self) -> str:
        suffix = "" if self._stored else " (no result stored)"
        return f"<TaskResult {self._id}{suffix}>"


def backend_error(result: AsyncResult[Any], error: BaseException) -> ResultBackendError:
    """The error a caller sees when the result store is down: which store, and what to do."""
    backend = result.backend
    where = backend.as_uri() if hasattr(backend, "as_uri") else type(backend).__name__
    detail = " ".join(error_text(error).split())
    return ResultBackendError(
        f"cannot read the result of task {result.id} from the result backend {where} "
        f"({detail}); the task itself may have run. Check that the result store is up and "
        "REDIS_URL names it, then ask again with `hexa status ID`"
    )
