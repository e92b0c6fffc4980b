"""Reading `*_tasks` services (emitted or hand-written) into task definitions."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, TypeGuard

import attrs

from hexa._exceptions import InvalidTaskConfigError, did_you_mean
from hexa._registry import TASKS_SUFFIX
from hexa._retry import retry_summary
from hexa._schedule import Schedule, check_schedule, schedule_text
from hexa._spec import caller_signature, qualified_name, returns_coroutine
from hexa._task import BaseTask

#: Celery task options the seed's advanced format may carry.
CELERY_OPTIONS = frozenset(
    {
        "autoretry_for",
        "dont_autoretry_for",
        "retry_kwargs",
        "retry_backoff",
        "retry_backoff_max",
        "retry_jitter",
        "bind",
        "max_retries",
        "default_retry_delay",
        "time_limit",
        "soft_time_limit",
        "rate_limit",
        "ignore_result",
        "track_started",
        "acks_late",
        "reject_on_worker_lost",
    }
)
#: hexa's own options; they never become task attributes.
HEXA_OPTIONS = frozenset({"queue", "timeout", "schedule"})


@attrs.frozen
class TaskDefinition:
    """One task as discovery will register it in Celery."""

    name: str
    func: Callable[..., Any] = attrs.field(eq=False)
    service: str
    options: Mapping[str, Any] = attrs.field(factory=dict, eq=False)
    queue: str | None = None
    timeout: float | None = None
    schedule: Schedule | None = attrs.field(default=None, eq=False)

    @property
    def source(self) -> str:
        return f"{qualified_name(self.func)} (service {self.service!r})"

    @cached_property
    def is_async(self) -> bool:
        return returns_coroutine(self.func)

    @cached_property
    def signature(self) -> inspect.Signature:
        """What callers pass: the function's parameters, minus the task when bound."""
        return caller_signature(self.func, bool(self.options.get("bind")))

    @property
    def retry_summary(self) -> str:
        return retry_summary(self.options)

    def settings(self) -> dict[str, object]:
        """What the task declares besides its name, only what is set (the worker's log)."""
        declared = {
            "is_async": self.is_async or None,
            "retry": self.retry_summary or None,
            "queue": self.queue,
            "timeout": self.timeout,
            "schedule": None if self.schedule is None else schedule_text(self.schedule),
        }
        return {key: value for key, value in declared.items() if value is not None}


def task_line(definition: TaskDefinition) -> str:
    """`name [async]  (retry summary)  queue=q  timeout=30s  schedule=every 300s`.

    One line per task, as the seed's start-up log shows it, with what is set only.
    """
    marker = " [async]" if definition.is_async else ""
    summary = definition.retry_summary
    line = f"{definition.name}{marker}" + (f"  ({summary})" if summary else "")
    if definition.queue:
        line += f"  queue={definition.queue}"
    if definition.timeout is not None:
        line += f"  timeout={definition.timeout:g}s"
    if definition.schedule is not None:
        line += f"  schedule={schedule_text(definition.schedule)}"
    return line


def module_name(service_name: str) -> str:
    """`invoicing_tasks` -> `invoicing` (the suffix only, not every `_tasks` inside)."""
    return service_name.removesuffix(TASKS_SUFFIX)


def _split_entry(service: str, key: str, entry: object) -> tuple[object, Mapping[str, Any]]:
    """The function and its config; a decorated task brings its declaration's config along."""
    target: object = entry
    config: Mapping[str, Any] = {}
    if isinstance(entry, Mapping):
        if "task" not in entry or set(entry) - {"task", "config"}:
            raise InvalidTaskConfigError(
                f"{service}[{key!r}]: the advanced format is "
                "{'task': function, 'config': {...}}; got keys " + repr(sorted(entry))
            )
        target, config = entry["task"], entry.get("config") or {}
    if isinstance(target, BaseTask):  # what the dict's own config says wins
        return target.spec.func, {**target.spec.config(), **config}
    return target, config


def _check_config(service: str, key: str, config: Mapping[str, Any]) -> None:
    unknown = set(config) - CELERY_OPTIONS - HEXA_OPTIONS
    if unknown:
        raise InvalidTaskConfigError(
            f"{service}[{key!r}] config has unknown option(s) {sorted(unknown)}; valid: "
            + ", ".join(sorted(CELERY_OPTIONS | HEXA_OPTIONS))
        )


def definition(service: str, key: str, entry: object) -> TaskDefinition:
    """Read one entry of a `*_tasks` dict, in either of the seed's formats."""
    func, config = _split_entry(service, key, entry)
    _check_config(service, key, config)
    if not callable(func):
        raise InvalidTaskConfigError(
            f"{service}[{key!r}] is {type(func).__name__}, not a function; register the "
            "function itself (or {'task': function, 'config': {...}})"
        )
    options = {k: v for k, v in config.items() if k in CELERY_OPTIONS}
    found = TaskDefinition(
        name=f"{module_name(service)}.{key}",
        func=func,
        service=service,
        options=options,
        queue=config.get("queue"),
        timeout=config.get("timeout"),
        schedule=config.get("schedule"),
    )
    if found.schedule is not None:
        check_schedule(found.schedule, found.signature, found.source)
    return found


def is_task_service(value: object, name: str) -> TypeGuard[Mapping[str, object]]:
    """Discovery takes services whose name ends in `_tasks` and whose value is a dict."""
    return name.endswith(TASKS_SUFFIX) and isinstance(value, Mapping)


def task_services(services: Mapping[str, object]) -> dict[str, Mapping[str, object]]:
    """The services discovery takes (see `is_task_service`)."""
    return {name: value for name, value in services.items() if is_task_service(value, name)}


def definitions(services: Mapping[str, object]) -> list[TaskDefinition]:
    """Every task of every `*_tasks` service, in registration order."""
    return [
        definition(service, key, entry)
        for service, entries in task_services(services).items()
        for key, entry in entries.items()
    ]


def _looks_like_tasks(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(callable(v) or isinstance(v, Mapping) for v in value.values())
    )


def _stem(service: str) -> str:
    """The module a near-miss service was meant for: `orders_task` -> `orders`."""
    return service.lower().removesuffix("_task").removesuffix("tasks").rstrip("_")


def _near_miss(name: str, value: object) -> str | None:
    """Why service `name` looks like a tasks service but will not be discovered, or None."""
    if name.endswith(TASKS_SUFFIX):
        if isinstance(value, Mapping):
            return None
        return f"{name!r} ends in '_tasks' but is a {type(value).__name__}, not a dict of functions"
    if "task" in name.lower() and _looks_like_tasks(value):
        return (
            f"{name!r} looks like a tasks service but does not end in '_tasks'; "
            f"rename it to '{_stem(name)}_tasks' to have it discovered"
        )
    return None


def near_misses(services: Mapping[str, object]) -> list[str]:
    """Explanations for services that look like task dicts but will not be discovered."""
    return [note for name, value in services.items() if (note := _near_miss(name, value))]


def unknown_task_reason(name: object, services: Mapping[str, object]) -> str:
    """Why a worker with these services has no task `name`, with the fix when hexa sees one.

    A near miss of the task's module (`orders_task` for `orders.place_order`) is named with
    its fix; otherwise the closest task names, if any.
    """
    reason = f"unknown task {name!r}: no module of this worker declares it"
    module = str(name).rpartition(".")[0]
    for service, value in services.items():
        note = _near_miss(service, value)
        if note and module in (_stem(service), module_name(service)):
            return f"{reason}; {note}"
    known = [
        f"{module_name(s)}.{key}" for s, tasks in task_services(services).items() for key in tasks
    ]
    return reason + did_you_mean(str(name), known)
