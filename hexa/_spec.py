"""`TaskSpec`: everything `@module_task` records about one function."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cached_property
from typing import Any

import attrs

from hexa._exceptions import ConfigurationError
from hexa._retry import RetryPolicy, celery_retry_options
from hexa._schedule import Schedule, check_schedule


def module_of(func: Callable[..., Any]) -> str:
    """The hexa module a function belongs to: the package after `modules` in its import path."""
    parts = func.__module__.split(".")
    if "modules" in parts[:-1]:
        return parts[parts.index("modules") + 1]
    raise ConfigurationError(
        f"cannot tell which module {func.__qualname__!r} belongs to: it is defined in "
        f"{func.__module__!r}, outside a 'modules.<name>' package; "
        "pass @module_task(module='<name>')"
    )


def qualified_name(func: Callable[..., Any]) -> str:
    """`modules.invoicing.tasks.emit_invoice`: where a task's function is defined."""
    return f"{func.__module__}.{func.__qualname__}"


def is_async(func: Callable[..., Any]) -> bool:
    """Whether calling `func` gives a coroutine (an `async def` task)."""
    return inspect.iscoroutinefunction(func)


def caller_signature(func: Callable[..., Any], bind: bool) -> inspect.Signature:
    """The parameters callers pass: the function's own, minus the task instance when bound."""
    sig = inspect.signature(func)
    if bind:
        sig = sig.replace(parameters=list(sig.parameters.values())[1:])
    return sig


@attrs.frozen(cache_hash=True)
class TaskSpec:
    """What a decorated function declares. Binding to Celery happens later, in discovery."""

    func: Callable[..., Any] = attrs.field(eq=False)
    module: str
    name: str
    retry: RetryPolicy | None = None
    queue: str | None = None
    timeout: float | None = None
    schedule: Schedule | None = attrs.field(default=None, eq=False)
    bind: bool = False

    def __attrs_post_init__(self) -> None:
        for label, value in (("module", self.module), ("name", self.name)):
            if not value or not value.isidentifier():
                raise ConfigurationError(
                    f"{label}={value!r} for {self.source}: use a Python identifier such as "
                    "'emit_invoice'"
                )
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError(f"timeout={self.timeout!r} for {self.source}: must be > 0")
        if self.queue is not None and not self.queue:
            raise ConfigurationError(f"queue='' for {self.source}: name a queue or leave it out")
        if self.schedule is not None:
            check_schedule(self.schedule, self.signature, self.source)

    @property
    def full_name(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def source(self) -> str:
        return qualified_name(self.func)

    @cached_property
    def is_async(self) -> bool:
        return is_async(self.func)

    @cached_property
    def signature(self) -> inspect.Signature:
        """The signature callers use: without the task instance when `bind=True`."""
        return caller_signature(self.func, self.bind)

    def config(self) -> dict[str, Any]:
        """The `config` of the seed's advanced format (empty: use the simple format)."""
        config: dict[str, Any] = celery_retry_options(self.retry) if self.retry else {}
        optional = {
            "bind": self.bind or None,
            "queue": self.queue,
            "timeout": self.timeout,
            "schedule": self.schedule,
        }
        config.update({key: value for key, value in optional.items() if value is not None})
        return config
