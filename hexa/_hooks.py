"""The hooks metrics and tracing plug into: publishing, header injection, dead-lettering.

Plain lists of callables, empty until `hexa.metrics` or `hexa.tracing` registers itself, so
with neither switched on each hook is an empty check. A task run is observed through Celery's
task signals instead, which those modules connect themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any

#: Variables that ask for traces to be exported (the OpenTelemetry SDK's own names).
TRACE_ENV = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)

PublishObserver = Callable[[str], AbstractContextManager[None]]
DeadLetterObserver = Callable[[Any, str], None]
Injector = Callable[[dict[str, Any]], None]

NOTHING: AbstractContextManager[None] = contextlib.nullcontext()
publish_observers: list[PublishObserver] = []
injectors: list[Injector] = []
dead_letter_observers: list[DeadLetterObserver] = []


def on_publish(observer: PublishObserver) -> None:
    """Run `observer(task_name)` around every publish of this process (once per observer)."""
    if observer not in publish_observers:
        publish_observers.append(observer)


def on_inject(injector: Injector) -> None:
    """`injector(headers)` writes the current trace context into a message's headers."""
    if injector not in injectors:
        injectors.append(injector)


def on_dead_letter(observer: DeadLetterObserver) -> None:
    """Call `observer(app, task_name)` for every message this process dead-letters."""
    if observer not in dead_letter_observers:
        dead_letter_observers.append(observer)


def around_publish(name: str) -> AbstractContextManager[Any]:
    """Every publish observer's context for one `name` message, nested."""
    if len(publish_observers) == 1:
        return publish_observers[0](name)
    stack = ExitStack()
    for observer in publish_observers:
        stack.enter_context(observer(name))
    return stack


def dead_lettered(app: Any, name: str) -> None:
    """A message for task `name` went to the dead-letter queue."""
    for observer in dead_letter_observers:
        observer(app, name)
