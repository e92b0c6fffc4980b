"""OpenTelemetry traces from the caller to the task (extra `hexa[otel]`).

`.send()` opens a PRODUCER span `send <task>` and puts its W3C trace context in the message
headers; the worker continues that trace in a CONSUMER span `process <task>` per run, so a
retry is a new span of the same trace (a child of the attempt that asked for it). The consumer
span is the current span while the task runs, on a pool thread or, for an `async def` task,
on the event loop (the bridge runs the coroutine in a copy of the thread's context): spans the
task opens become its children, and hexa's log lines carry `trace_id` and `span_id`.

hexa switches this on by itself (`hexa._observe`): when the process has a tracer provider
(the application set one, or runs under `opentelemetry-instrument`), or when
`OTEL_TRACES_EXPORTER` / `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` is set, in which case hexa sets
an SDK tracer provider from the `OTEL_*` environment unless the application set one. A worker
decides at start-up and again in each pool process (after `worker_process_init`, where apps
often set their provider); a client at each `.send()` until it is on. Span attributes are
task names, ids, queues and attempts: never arguments.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Any

from celery import signals
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from hexa import _hooks
from hexa._exceptions import ConfigurationError
from hexa._logging import get_logger

__all__ = ["configure_from_environment", "install"]

log = get_logger()
_tracer = trace.get_tracer("hexa")
#: The PRODUCER span `.send()` opened, so the header hook can name its message id.
_sending: contextvars.ContextVar[Span | None] = contextvars.ContextVar("hexa_send", default=None)
_installed = False
_lock = threading.Lock()
#: Where a run keeps its span and context token, on Celery's per-run request object.
_RUN = "hexa_trace"
#: Seconds a pool process waits, at its exit, for its spans to be exported.
FLUSH_TIMEOUT = 5.0


class _RequestGetter(Getter[Any]):
    """Reads trace headers from a task's request (Celery puts message headers on it)."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = getattr(carrier, key, None)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Any) -> list[str]:
        return list(vars(carrier))


_GETTER = _RequestGetter()


def install() -> bool:
    """Trace every publish and task run of this process (idempotent); True once installed."""
    global _installed
    with _lock:
        if _installed:
            return True
        _installed = True
        try:
            configure_from_environment()
        except ConfigurationError as error:  # traces are lost; the tasks must still run
            log.error("tracing.not_configured", error=str(error))
        _connect()
    return True


def _connect() -> None:
    receivers = {
        signals.before_task_publish: _inject,
        signals.task_prerun: _start_run,
        signals.task_success: _succeeded,
        signals.task_retry: _retried,
        signals.task_failure: _failed,
        signals.task_postrun: _end_run,
        signals.worker_process_shutdown: _flush,
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver, weak=False, dispatch_uid=f"hexa.tracing.{receiver.__name__}")
    _hooks.on_publish(producer_span)
    _hooks.on_inject(inject_headers)


# -- configuration from the environment --------------------------------------------------


def configure_from_environment() -> bool:
    """Set an SDK tracer provider from `OTEL_*` when asked and the application set none.

    Exporters are found by name like the SDK's own auto-configuration does (entry points
    `opentelemetry_traces_exporter`: `otlp`, `console`, ...), each behind a batch processor.
    """
    asked = any(os.environ.get(k) for k in _hooks.TRACE_ENV)
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    if not asked or disabled or not _provider_unset():
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ConfigurationError(
            "OTEL_* asks for traces but the OpenTelemetry SDK is not installed: "
            "pip install 'hexa[otel]'"
        ) from None
    provider = TracerProvider(resource=Resource.create())  # OTEL_SERVICE_NAME, sampler...
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing.configured", exporters=os.environ.get("OTEL_TRACES_EXPORTER", "otlp"))
    return True


def _provider_unset() -> bool:
    return isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _exporters() -> list[Any]:
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",")
    found = []
    for name in (n.strip() for n in names if n.strip() not in ("", "none")):
        matches = list(entry_points(group="opentelemetry_traces_exporter", name=name))
        if not matches:
            raise ConfigurationError(
                f"OTEL_TRACES_EXPORTER={name!r}: no span exporter of that name is installed; "
                "for 'otlp': pip install opentelemetry-exporter-otlp"
            )
        found.append(matches[0].load()())
    return found


# -- the caller's side ---------------------------------------------------------------------


@contextmanager
def producer_span(name: str) -> Iterator[None]:
    """`send <task>`: the current span while `.send()` builds and publishes the message."""
    attributes = {"messaging.operation.type": "send", "hexa.task": name}
    with _tracer.start_as_current_span(
        f"send {name}", kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        token = _sending.set(span)
        try:
            yield
        finally:
            _sending.reset(token)


def inject_headers(headers: dict[str, Any]) -> None:
    """The current trace context into a message stored now and published later (outbox)."""
    propagate.inject(headers)


def _inject(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """`before_task_publish`: the current trace context goes into the message headers."""
    if headers is None:
        return
    propagate.inject(headers)
    span = _sending.get()
    if span is not None and span is trace.get_current_span():
        span.set_attribute("messaging.message.id", str(headers.get("id", "")))


# -- the worker's side ---------------------------------------------------------------------


def _run_attributes(task: Any, request: Any) -> Mapping[str, Any]:
    delivery = getattr(request, "delivery_info", None) or {}
    return {
        "messaging.operation.type": "process",
        "messaging.message.id": str(request.id),
        "messaging.destination.name": str(delivery.get("routing_key") or ""),
        "hexa.task": task.name,
        "hexa.task.attempt": int(request.retries or 0) + 1,
    }


def _start_run(task: Any = None, **_: Any) -> None:
    """`task_prerun`: a CONSUMER span, child of the sender's, current for the whole run."""
    request = task.request
    parent = propagate.extract(request, getter=_GETTER)
    span = _tracer.start_span(
        f"process {task.name}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=_run_attributes(task, request),
    )
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    setattr(request, _RUN, (span, token))


def _run_span(task: Any) -> Span | None:
    found = getattr(getattr(task, "request", None), _RUN, None)
    return found[0] if found else None


def _succeeded(sender: Any = None, **_: Any) -> None:
    span = _run_span(sender)
    if span is not None:
        span.set_attribute("hexa.task.outcome", "succeeded")


def _retried(sender: Any = None, reason: Any = None, **_: Any) -> None:
    _mark_error(sender, getattr(reason, "exc", None) or reason, "retried")  # Retry(exc=...)


def _failed(sender: Any = None, exception: Any = None, **_: Any) -> None:
    _mark_error(sender, exception, "failed")


def _mark_error(task: Any, error: Any, outcome: str) -> None:
    span = _run_span(task)
    if span is None:
        return
    span.set_attribute("hexa.task.outcome", outcome)
    if isinstance(error, BaseException):
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    else:
        span.set_status(Status(StatusCode.ERROR, str(error)))


def _end_run(task: Any = None, **_: Any) -> None:
    """`task_postrun`: end the run's span and restore the thread's context."""
    request = getattr(task, "request", None)
    found = getattr(request, _RUN, None)
    if not found:
        return
    span, token = found
    setattr(request, _RUN, None)
    span.end()
    otel_context.detach(token)


def _flush(**_: Any) -> None:
    """A pool process exits without running atexit hooks: export what it still holds."""
    flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if flush is not None:
        flush(int(FLUSH_TIMEOUT * 1000))
