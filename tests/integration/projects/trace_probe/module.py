"""An application that sets its own OpenTelemetry tracer provider, as apps do.

Its spans go, one JSON object a line, to the file named by `TRACE_PROBE_SPANS`, where the
test reads them. The tasks log a line of their own; `async_step` also opens a span on the
event loop.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import anyio
import redis
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from hexa import FixedDelay, Module, module_task

log = structlog.get_logger("trace_probe")
tracer = trace.get_tracer("trace_probe")


class JsonLinesExporter(SpanExporter):
    """Appends each finished span to a file as one JSON line (any process may write)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(record(span)) + "\n" for span in spans)
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(lines)
        return SpanExportResult.SUCCESS


def record(span: ReadableSpan) -> dict[str, object]:
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "start": span.start_time,
        "end": span.end_time,
        "pid": os.getpid(),
    }


if os.environ.get("TRACE_PROBE_SPANS"):
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(JsonLinesExporter(os.environ["TRACE_PROBE_SPANS"]))
    )
    trace.set_tracer_provider(provider)


class Flaky(Exception):
    """The error `flaky_once` raises on its first attempt."""


@module_task
def sync_step(n: int) -> int:
    log.info("probe.sync", n=n)
    return n


@module_task
async def async_step(n: int) -> int:
    with tracer.start_as_current_span("probe.inner"):
        await anyio.sleep(0.01)
        log.info("probe.async", n=n)
    return n


@module_task(retry=FixedDelay(delay=0, max_retries=1, on=(Flaky,)))
def flaky_once(key: str) -> str:
    with redis.Redis.from_url(os.environ["REDIS_URL"]) as client:
        attempt = int(client.incr(key))
        client.expire(key, 300)
    if attempt == 1:
        raise Flaky("first attempt fails")
    return f"ok after {attempt}"


class TraceProbeModule(Module):
    pass
