"""Tasks for the publish-path tests: `-> None` results, and a task that publishes another."""

from __future__ import annotations

from typing import Any

from hexa import Module, module_task


@module_task(module="publish_probe")
def quiet(x: int) -> None:
    return None


@module_task(module="publish_probe")
def broken(x: int) -> None:
    raise ValueError(f"broken {x}")


@module_task(module="publish_probe", bind=True)
def child(task: Any) -> list[str | None]:
    return [task.request.parent_id, task.request.root_id]


@module_task(module="publish_probe", bind=True)
def parent(task: Any) -> str:
    """Publishes from inside the worker: the child's message names this task as its parent."""
    return child.send().id


class PublishProbeModule(Module):
    pass
