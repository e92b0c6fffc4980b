"""Where metrics and tracing plug into publishing and dead-lettering.

Nothing here imports prometheus_client or OpenTelemetry, and with neither switched on each
hook is an empty check. `hexa.metrics` and `hexa.tracing` register themselves here when they
are switched on; a task run is observed through Celery's task signals, which they connect.

Tracing is on in a process when a tracer provider is set there (by the application, or by
`opentelemetry-instrument`), or when the `OTEL_*` environment asks for exported traces. Being
imported is not enough: redis-py imports OpenTelemetry whenever its SDK is installed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any, Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: Variables that ask for traces to be exported (the OpenTelemetry SDK's own names).
TRACE_ENV = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)
#: `HEXA_CLIENT_METRICS=1`: count publishes in this process (see `hexa.metrics`).
CLIENT_METRICS_ENV = "HEXA_CLIENT_METRICS"

PublishObserver = Callable[[str], AbstractContextManager[None]]
DeadLetterObserver = Callable[[Any, str], None]

_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()
_publish: list[PublishObserver] = []
_dead: list[DeadLetterObserver] = []
_environment_read = False


def on_publish(observer: PublishObserver) -> None:
    """Run `observer(task_name)` around every publish of this process (once per observer)."""
    if observer not in _publish:
        _publish.append(observer)


def on_dead_letter(observer: DeadLetterObserver) -> None:
    """Call `observer(app, task_name)` for every message this process dead-letters."""
    if observer not in _dead:
        _dead.append(observer)


def tracing_wanted() -> bool:
    """OpenTelemetry in use here: asked for by the environment, or a tracer provider set."""
    return any(os.environ.get(k) for k in TRACE_ENV) or provider_set()


def provider_set() -> bool:
    """Whether this process set a tracer provider; never imports OpenTelemetry to find out."""
    otel = sys.modules.get("opentelemetry.trace")
    return otel is not None and not isinstance(
        otel.get_tracer_provider(), otel.ProxyTracerProvider
    )


def start_tracing(**_: Any) -> bool:
    """Switch tracing on when OpenTelemetry is in use (idempotent; a Celery signal receiver)."""
    if not tracing_wanted():
        return False
    from hexa import tracing  # only now: OpenTelemetry is installed and wanted

    return tracing.install()


def _read_environment() -> None:
    """Once per process, at the first publish: what the environment switches on."""
    global _environment_read
    _environment_read = True
    if os.environ.get(CLIENT_METRICS_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        from hexa.metrics import enable_client_metrics

        enable_client_metrics()
    start_tracing()


def publishing(name: str) -> AbstractContextManager[Any]:
    """What to run around publishing one `name` message: nothing unless an observer is on."""
    if not _environment_read:
        _read_environment()
    if not _publish and not (provider_set() and start_tracing()):
        return _NOTHING
    if len(_publish) == 1:
        return _publish[0](name)
    stack = ExitStack()
    for observer in _publish:
        stack.enter_context(observer(name))
    return stack


def observed(publish: Callable[Concatenate[str, P], R]) -> Callable[Concatenate[str, P], R]:
    """Wrap a publishing function whose first argument is the task name in `publishing`."""

    @functools.wraps(publish)
    def observed_publish(name: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with publishing(name):
            return publish(name, *args, **kwargs)

    return observed_publish


def dead_lettered(app: Any, name: str) -> None:
    """A message for task `name` went to the dead-letter queue."""
    for observer in _dead:
        observer(app, name)
