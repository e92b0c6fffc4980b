"""The decorated function: still a plain callable, plus a typed `.send()`."""

from __future__ import annotations

import functools
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, Generic, Never, ParamSpec, Self, TypeVar

import anyio.to_thread
import attrs

from hexa._arguments import check_call, check_json
from hexa._bridge import bridge
from hexa._options import SendOptions, refuse_unknown_options
from hexa._publisher import publish, stores_result
from hexa._result import TaskResult
from hexa._spec import TaskSpec
from hexa._workflows import Workflow
from hexa._workflows.steps import first_step

P = ParamSpec("P")
R = TypeVar("R")


class BaseTask(Generic[P, R]):
    """What `.send()` and `.with_options()` share between sync and async tasks."""

    spec: TaskSpec
    _options: SendOptions

    def __init__(self, spec: TaskSpec, options: SendOptions | None = None) -> None:
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "_options", options or SendOptions())
        # What functools.update_wrapper copies (so inspect and help() see the function),
        # written past __setattr__, which keeps the shared task immutable.
        for attr in functools.WRAPPER_ASSIGNMENTS:
            if hasattr(spec.func, attr):
                object.__setattr__(self, attr, getattr(spec.func, attr))
        object.__setattr__(self, "__wrapped__", spec.func)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self.name} is shared and immutable; use .with_options()")

    @property
    def name(self) -> str:
        """The Celery task name, `<module>.<task>`."""
        return self.spec.full_name

    def send(self, *args: P.args, **kwargs: P.kwargs) -> TaskResult[R]:
        """Check the arguments against the signature, then publish. Returns at once."""
        check_call(self.name, self.spec.signature, args, kwargs)
        check_json(self.name, args, kwargs, self.spec.signature)
        stored = stores_result(self.spec.signature)  # `-> None`: nothing to store or wait for
        return publish(self.name, args, kwargs, self._options, self.spec.queue, store_result=stored)

    async def send_async(self, *args: P.args, **kwargs: P.kwargs) -> TaskResult[R]:
        """`send()` for async callers: publishes from a worker thread, not on the loop."""
        return await anyio.to_thread.run_sync(functools.partial(self.send, *args, **kwargs))

    def s(self, *args: P.args, **kwargs: P.kwargs) -> Workflow[R]:
        """A one-step workflow: this call, checked now as `.send()` checks it.

        Add steps with `.then(task, ...)`, run workflows in parallel with `hexa.group(...)`,
        publish with `.send()`.
        """
        return Workflow(first_step(self, args, kwargs))

    def with_options(
        self,
        *,
        countdown: float | None = None,
        eta: datetime | None = None,
        expires: float | datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        **unknown: Never,
    ) -> Self:
        """A copy whose `.send()` uses these delivery options; this task is unchanged.

        `unknown` is typed `Never` so type checkers reject any other option; at run time it
        gets the error that lists the valid ones (retry policy belongs to the declaration).
        """
        refuse_unknown_options(self.name, unknown, "with_options")
        changes: dict[str, Any] = {
            "countdown": countdown,
            "eta": eta,
            "expires": expires,
            "priority": priority,
            "queue": queue,
        }
        options = attrs.evolve(self._options, **{k: v for k, v in changes.items() if v is not None})
        return type(self)(self.spec, options)

    def __repr__(self) -> str:
        kind = "async task" if self.spec.is_async else "task"
        return f"<hexa {kind} {self.name}>"


class Task(BaseTask[P, R]):
    """A sync task. Calling it runs the function in this process."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = self.spec.func(*args, **kwargs)
        return result


class AsyncTask(BaseTask[P, R]):
    """An `async def` task. Calling it returns the coroutine, as the function would.

    In-process: `await task(...)` in async code (it runs on the caller's loop);
    `task.run_sync(...)` in sync code (it runs on hexa's persistent loop, as in a worker).
    """

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        coroutine: Coroutine[Any, Any, R] = self.spec.func(*args, **kwargs)
        return coroutine

    def run_sync(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task here and wait for its result, as a worker would run it.

        It runs on this process's persistent event loop, so async clients cached by earlier
        calls keep working (`anyio.run(task, ...)` would give each call a fresh loop), and
        `timeout=` applies. Works from sync code, including code called from a running loop.
        """
        result: R = bridge.run_sync(self.spec.func, args, kwargs, self.spec.timeout)
        return result
