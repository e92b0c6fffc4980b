"""Deciding what is observed: metrics and tracing are switched on here, lazily.

Nothing here imports prometheus_client or OpenTelemetry until it is wanted. Tracing is on in
a process when a tracer provider is set there (by the application, or `opentelemetry-
instrument`), or when the `OTEL_*` environment asks for exported traces. Being imported is
not enough: redis-py imports OpenTelemetry whenever its SDK is installed. A worker decides at
start-up and in each pool process (Celery signals); a client at its first `.send()`, then
again at each one until tracing is on.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Concatenate, ParamSpec, TypeVar

from hexa import _hooks

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")

#: `HEXA_CLIENT_METRICS=1`: count publishes in this process (see `hexa.metrics`).
CLIENT_METRICS_ENV = "HEXA_CLIENT_METRICS"
_environment_read = False


def tracing_wanted() -> bool:
    """OpenTelemetry in use here: asked for by the environment, or a tracer provider set."""
    return any(os.environ.get(k) for k in _hooks.TRACE_ENV) or provider_set()


def provider_set() -> bool:
    """Whether this process set a tracer provider; never imports OpenTelemetry to find out."""
    otel = sys.modules.get("opentelemetry.trace")
    return otel is not None and not isinstance(otel.get_tracer_provider(), otel.ProxyTracerProvider)


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
    if not _hooks.publish_observers and not (provider_set() and start_tracing()):
        return _hooks.NOTHING
    return _hooks.around_publish(name)


def observed(
    publish: Callable[Concatenate[S, str, P], R],
) -> Callable[Concatenate[S, str, P], R]:
    """Wrap a publishing method whose first argument is the task name in `publishing`."""

    @functools.wraps(publish)
    def observed_publish(self: S, name: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with publishing(name):
            return publish(self, name, *args, **kwargs)

    return observed_publish


def inject_trace_context(headers: dict[str, Any]) -> None:
    """Put the current trace context in `headers` of a message sent later (the outbox)."""
    if not _environment_read:
        _read_environment()
    if _hooks.injectors or (provider_set() and start_tracing()):
        for inject in _hooks.injectors:
            inject(headers)
