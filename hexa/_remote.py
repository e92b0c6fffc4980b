"""`RemoteTask`: a task known by its name and signature only, for processes without its code."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from hexa._exceptions import ConfigurationError
from hexa._spec import TaskSpec
from hexa._task import BaseTask

P = ParamSpec("P")
R = TypeVar("R")


class RemoteTask(BaseTask[P, R]):
    """`.send()`, `.send_async()`, `.with_options()` and `.name`, but no in-process call.

    What `hexa stubs` writes: the signature is a copy of the real task's, so type checkers and
    the run-time checks see the same parameters, while the implementation stays on the worker.
    """

    def __repr__(self) -> str:
        return f"<hexa remote task {self.name}>"


def remote_task(
    name: str, *, queue: str | None = None
) -> Callable[[Callable[P, R]], RemoteTask[P, R]]:
    """Turn a signature-only function into the client of the task `name` (`<module>.<task>`).

    For an `async def` task, the function's return type is the awaited result.
    """
    module, _, short = name.rpartition(".")
    if not module:
        raise ConfigurationError(f"remote_task({name!r}): use the full name '<module>.<task>'")

    def declare(signature: Callable[P, R]) -> RemoteTask[P, R]:
        return RemoteTask(TaskSpec(func=signature, module=module, name=short, queue=queue))

    return declare
