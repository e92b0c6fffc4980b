"""The code-first registry: what `@module_task` declared, emitted as the seed's service dicts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from hexa._exceptions import DuplicateTaskError, UnknownTaskError, did_you_mean

if TYPE_CHECKING:
    from hexa._task import BaseTask

TASKS_SUFFIX = "_tasks"


@attrs.define(repr=False)
class Registry:
    """Every task declared with `@module_task` in this process, by full name."""

    _tasks: dict[str, BaseTask[Any, Any]] = attrs.field(factory=dict, init=False)

    def add(self, task: BaseTask[Any, Any]) -> None:
        """Record a task; a second function claiming the same name is an error."""
        name = task.spec.full_name
        existing = self._tasks.get(name)
        # Re-importing the same function (a reload, a test) replaces it; anything else clashes.
        if existing is not None and existing.spec.source != task.spec.source:
            raise DuplicateTaskError(
                f"task {name!r} is declared twice: by {existing.spec.source} and by "
                f"{task.spec.source}; give one of them another name= or module="
            )
        self._tasks[name] = task

    def get(self, full_name: str) -> BaseTask[Any, Any]:
        try:
            return self._tasks[full_name]
        except KeyError:
            hint = did_you_mean(full_name, self._tasks)
            raise UnknownTaskError(f"unknown task {full_name!r}{hint}") from None

    def modules(self) -> list[str]:
        return sorted({task.spec.module for task in self._tasks.values()})

    def services(self, module: str | None = None) -> dict[str, dict[str, object]]:
        """The seed's `"<module>_tasks"` dicts: the task itself, or `{"task", "config"}`."""
        services: dict[str, dict[str, object]] = {}
        for task in self._tasks.values():
            if module is not None and task.spec.module != module:
                continue
            config = task.spec.config()
            entry: object = {"task": task, "config": config} if config else task
            services.setdefault(task.spec.module + TASKS_SUFFIX, {})[task.spec.name] = entry
        return services

    def clear(self) -> None:
        self._tasks.clear()

    def __contains__(self, full_name: object) -> bool:
        return full_name in self._tasks

    def __iter__(self) -> Iterator[BaseTask[Any, Any]]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"<Registry tasks={len(self._tasks)} modules={len(self.modules())}>"


registry = Registry()
