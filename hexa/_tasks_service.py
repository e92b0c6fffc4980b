"""`tasks_service`: the seed's dispatch-by-name, with its rules enforced before publishing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from hexa._arguments import bind_arguments, check_json
from hexa._definitions import TaskDefinition
from hexa._exceptions import UnknownTaskError, did_you_mean
from hexa._options import SendOptions, refuse_unknown_options
from hexa._publisher import publish, stores_result
from hexa._result import TaskResult


class TasksService:
    """`send_task(name, args=, kwargs=, countdown=, eta=, expires=, priority=, queue=)`."""

    def __init__(self, definitions: Iterable[TaskDefinition]) -> None:
        self._definitions = {d.name: d for d in definitions}

    def names(self) -> list[str]:
        return sorted(self._definitions)

    def send_task(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: datetime | None = None,
        expires: float | datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        **unknown: Any,
    ) -> TaskResult[Any]:
        """Check name, options and arguments, then publish; nothing is sent on error."""
        refuse_unknown_options(name, unknown)
        definition = self._definitions.get(name)
        if definition is None:
            hint = did_you_mean(name, self._definitions)
            raise UnknownTaskError(f"unknown task {name!r}{hint}")
        args, kwargs = list(args or ()), dict(kwargs or {})
        bind_arguments(name, definition.signature, args, kwargs)
        check_json(name, args, kwargs, definition.signature)
        options = SendOptions(countdown, eta, expires, priority, queue)
        stored = stores_result(definition.signature)
        return publish(name, args, kwargs, options, definition.queue, store_result=stored)

    def __repr__(self) -> str:
        return f"<TasksService tasks={len(self._definitions)}>"
