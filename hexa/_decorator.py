"""`@module_task`: declare a task at import; discovery binds it to Celery later."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar, overload

from hexa._registry import registry
from hexa._retry import RetryPolicy
from hexa._schedule import Schedule
from hexa._spec import TaskSpec, module_of
from hexa._task import AsyncTask, BaseTask, Task

P = ParamSpec("P")
R = TypeVar("R")


class TaskDecorator(Protocol):
    """What `@module_task(...)` returns when `bind` is not set."""

    @overload
    def __call__(  # type: ignore[overload-overlap]  # a coroutine function is also a Callable[P, R]
        self, func: Callable[P, Coroutine[Any, Any, R]], /
    ) -> AsyncTask[P, R]: ...
    @overload
    def __call__(self, func: Callable[P, R], /) -> Task[P, R]: ...


class BoundTaskDecorator(Protocol):
    """What `@module_task(bind=True, ...)` returns: the first parameter is the Celery task."""

    @overload
    def __call__(  # type: ignore[overload-overlap]  # async first: it is also a Callable
        self, func: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]], /
    ) -> AsyncTask[P, R]: ...
    @overload
    def __call__(self, func: Callable[Concatenate[Any, P], R], /) -> Task[P, R]: ...


@overload
def module_task(  # type: ignore[overload-overlap]  # async first: it is also a Callable
    func: Callable[P, Coroutine[Any, Any, R]], /
) -> AsyncTask[P, R]: ...
@overload
def module_task(func: Callable[P, R], /) -> Task[P, R]: ...
@overload
def module_task(
    *,
    retry: RetryPolicy | None = ...,
    name: str | None = ...,
    module: str | None = ...,
    queue: str | None = ...,
    timeout: float | None = ...,
    schedule: Schedule | None = ...,
    bind: Literal[False] = ...,
) -> TaskDecorator: ...
@overload
def module_task(
    *,
    retry: RetryPolicy | None = ...,
    name: str | None = ...,
    module: str | None = ...,
    queue: str | None = ...,
    timeout: float | None = ...,
    schedule: Schedule | None = ...,
    bind: Literal[True],
) -> BoundTaskDecorator: ...
def module_task(
    func: Callable[..., Any] | None = None,
    /,
    *,
    retry: RetryPolicy | None = None,
    name: str | None = None,
    module: str | None = None,
    queue: str | None = None,
    timeout: float | None = None,
    schedule: Schedule | None = None,
    bind: bool = False,
) -> Any:
    """Declare `func` as the task `<module>.<name>`; the function stays a plain callable.

    Only records metadata in `hexa.registry`: nothing connects to a broker here.
    """

    def declare(func: Callable[..., Any]) -> BaseTask[Any, Any]:
        spec = TaskSpec(
            func=func,
            module=module or module_of(func),
            name=name or func.__name__,
            retry=retry,
            queue=queue,
            timeout=timeout,
            schedule=schedule,
            bind=bind,
        )
        task: BaseTask[Any, Any] = AsyncTask(spec) if spec.is_async else Task(spec)
        registry.add(task)
        return task

    return declare if func is None else declare(func)
