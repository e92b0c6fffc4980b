"""OpenTelemetry traces from `.send()` in this process to real workers, and their log lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hexa import remote_task
from tests.conftest import StartWorker
from tests.support.services import unique
from tests.support.worker import REPO, WorkerProcess

pytestmark = pytest.mark.integration

PROJECTS = Path(__file__).parent / "projects"
NO_OTEL = REPO / "tests" / "support" / "no_otel"
SpanRecord = dict[str, Any]
_exporter = InMemorySpanExporter()
tracer = trace.get_tracer("tests.client")


@remote_task("trace_probe.sync_step")
def sync_step(n: int) -> int: ...


@remote_task("trace_probe.async_step")
def async_step(n: int) -> int: ...


@remote_task("trace_probe.flaky_once")
def flaky_once(key: str) -> str: ...


@remote_task("observe_probe.ok")
def ok(n: int) -> int: ...


@pytest.fixture(scope="module")
def client_spans() -> Iterator[InMemorySpanExporter]:
    """This process's spans, kept in memory (the provider is set once per process)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not getattr(provider, "_hexa_test_exporter", False):
        assert isinstance(provider, TracerProvider)
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        provider._hexa_test_exporter = True  # type: ignore[attr-defined]
    yield _exporter
    _exporter.clear()


def hex_id(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def trace_of(span: Any) -> str:
    return hex_id(span.get_span_context().trace_id, 32)


def sent_spans(exporter: InMemorySpanExporter, trace_id: str) -> dict[str, ReadableSpan]:
    found = {}
    for span in exporter.get_finished_spans():
        if span.context is not None and hex_id(span.context.trace_id, 32) == trace_id:
            found[span.name] = span
    return found


def worker_spans(
    path: Path, trace_id: str, ready: Callable[[list[SpanRecord]], bool], timeout: float = 30
) -> list[SpanRecord]:
    """The worker's exported spans of one trace, once `ready` says they are all there."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        spans = [s for s in map(json.loads, lines) if s["trace_id"] == trace_id]
        if ready(spans):
            return spans
        if time.monotonic() > deadline:
            raise AssertionError(f"spans of trace {trace_id} incomplete: {spans}")
        time.sleep(0.1)


def named(spans: list[SpanRecord], name: str) -> list[SpanRecord]:
    return [s for s in spans if s["name"] == name]


def attrs(span: SpanRecord) -> dict[str, Any]:
    found: dict[str, Any] = span["attributes"]
    return found


def has(*names: str) -> Callable[[list[SpanRecord]], bool]:
    return lambda spans: all(named(spans, n) for n in names)


def log_line(worker: WorkerProcess, event: str, task_id: str) -> dict[str, Any]:
    found = worker.wait_for(event, task_id=task_id)  # logged after the result is stored
    assert len(found) == 1, worker.output()
    return found[0]


@pytest.fixture
def spans_file(tmp_path: Path) -> Path:
    return tmp_path / "worker-spans.jsonl"


@pytest.fixture
def trace_worker(
    project: Callable[..., Path],
    start_worker: StartWorker,
    real_env: dict[str, str],
    spans_file: Path,
) -> Callable[[str], WorkerProcess]:
    def start(pool: str) -> WorkerProcess:
        env = {**real_env, "TRACE_PROBE_SPANS": str(spans_file)}
        return start_worker(project(PROJECTS / "trace_probe"), env, [f"--pool={pool}", "-c", "2"])

    return start


@pytest.mark.usefixtures("hexa_client")
class TestTracesFromSendToTheTask:
    @pytest.mark.parametrize("pool", ["prefork", "threads"])
    def test_sync_and_async_runs_continue_the_senders_trace_and_their_logs_carry_its_ids(
        self,
        pool: str,
        trace_worker: Callable[[str], WorkerProcess],
        spans_file: Path,
        client_spans: InMemorySpanExporter,
    ) -> None:
        worker = trace_worker(pool)
        with tracer.start_as_current_span("client.request") as root:
            sync_result, async_result = sync_step.send(1), async_step.send(2)
        assert (sync_result.get(timeout=30), async_result.get(timeout=30)) == (1, 2)
        trace_id = trace_of(root)
        sent = sent_spans(client_spans, trace_id)
        runs = worker_spans(
            spans_file,
            trace_id,
            has("process trace_probe.sync_step", "process trace_probe.async_step", "probe.inner"),
        )
        for task, result, event in (
            ("sync_step", sync_result, "probe.sync"),
            ("async_step", async_result, "probe.async"),
        ):
            producer = sent[f"send trace_probe.{task}"]
            assert producer.kind is trace.SpanKind.PRODUCER
            assert producer.parent is not None
            assert producer.parent.span_id == root.get_span_context().span_id
            assert producer.attributes is not None
            assert producer.attributes["messaging.message.id"] == result.id
            [run] = named(runs, f"process trace_probe.{task}")
            assert run["kind"] == "CONSUMER"
            assert run["parent_id"] == hex_id(producer.context.span_id, 16)
            assert run["attributes"]["messaging.message.id"] == result.id
            assert run["attributes"]["hexa.task.outcome"] == "succeeded"
            done = log_line(worker, "task.succeeded", result.id)
            assert (done["trace_id"], done["span_id"]) == (trace_id, run["span_id"])
            own = log_line(worker, event, result.id)
            assert own["trace_id"] == trace_id
        [inner] = named(runs, "probe.inner")  # opened by the task's own code on the loop
        [async_run] = named(runs, "process trace_probe.async_step")
        assert inner["parent_id"] == async_run["span_id"]
        assert log_line(worker, "probe.async", async_result.id)["span_id"] == inner["span_id"]
        assert (
            log_line(worker, "probe.sync", sync_result.id)["span_id"]
            == named(runs, "process trace_probe.sync_step")[0]["span_id"]
        )

    def test_the_otel_environment_alone_makes_a_worker_export_the_continued_trace(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        client_spans: InMemorySpanExporter,
    ) -> None:
        env = {
            **real_env,
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_SERVICE_NAME": "observe-probe-worker",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        worker = start_worker(project(PROJECTS / "observe_probe"), env, ["-c", "1"])
        with tracer.start_as_current_span("client.request") as root:
            result = ok.send(5)
        assert result.get(timeout=30) == 5
        trace_id = trace_of(root)
        done = log_line(worker, "task.succeeded", result.id)
        assert done["trace_id"] == trace_id
        console = f'"trace_id": "0x{trace_id}"'  # ConsoleSpanExporter's JSON
        deadline = time.monotonic() + 20
        while not any(console in line for line in worker.lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        text = "\n".join(worker.lines)
        assert console in text, worker.output()
        assert '"name": "process observe_probe.ok"' in text
        assert '"service.name": "observe-probe-worker"' in text


def client_record(span: ReadableSpan) -> SpanRecord:
    """A span of this process in the worker exporter's JSON form."""
    assert span.context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "span_id": hex_id(span.context.span_id, 16),
        "parent_id": hex_id(span.parent.span_id, 16) if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "start": span.start_time,
        "end": span.end_time,
        "pid": None,
    }


def span_tree(spans: list[SpanRecord], timings: bool = False) -> str:
    """The trace as indented lines: name, kind, where it ran, attempt and outcome."""
    children: dict[str | None, list[SpanRecord]] = {}
    ids = {s["span_id"] for s in spans}
    for span in sorted(spans, key=lambda s: (s["start"], s["name"])):
        parent = span["parent_id"] if span["parent_id"] in ids else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: str | None, prefix: str) -> None:
        found = children.get(parent, [])
        for index, span in enumerate(found):
            last = index == len(found) - 1
            branch = "" if parent is None else ("└─ " if last else "├─ ")
            lines.append(prefix + branch + describe(span, timings))
            walk(span["span_id"], prefix + ("" if parent is None else ("   " if last else "│  ")))

    walk(None, "")
    return "\n".join(lines)


def describe(span: SpanRecord, timings: bool) -> str:
    found = attrs(span)
    where = "client" if span["pid"] is None else "worker"
    text = f"{span['name']}  [{span['kind'].lower()}, {where}]"
    if "hexa.task.attempt" in found:
        text += f"  attempt {found['hexa.task.attempt']}: {found['hexa.task.outcome']}"
    if timings:
        text += f"  {(span['end'] - span['start']) / 1e6:.1f} ms"
    return text


@pytest.mark.usefixtures("hexa_client")
class TestOneTrace:
    def test_one_request_sending_three_tasks_is_the_span_tree_docs_observability_shows(
        self,
        trace_worker: Callable[[str], WorkerProcess],
        spans_file: Path,
        client_spans: InMemorySpanExporter,
    ) -> None:
        worker = trace_worker("prefork")
        with tracer.start_as_current_span("POST /invoices") as root:
            results = [sync_step.send(1), async_step.send(2), flaky_once.send(unique("hexa-k"))]
        for result in results:
            result.get(timeout=30)
        trace_id = trace_of(root)
        runs = worker_spans(
            spans_file,
            trace_id,
            lambda spans: len(spans) == 5,  # 4 runs, 1 inner span
        )
        mine = [client_record(s) for s in sent_spans(client_spans, trace_id).values()]
        print("\n" + span_tree(mine + runs, timings=True))  # the picture in the docs
        print(json.dumps(log_line(worker, "task.succeeded", results[0].id)))
        assert span_tree(mine + runs) == EXPECTED_TREE
        retried = results[2]  # a retry: a new span of the same trace, the first marked ERROR
        name = "process trace_probe.flaky_once"
        first, second = sorted(named(runs, name), key=lambda s: attrs(s)["hexa.task.attempt"])
        assert (first["status"], second["status"]) == ("ERROR", "UNSET")
        assert attrs(first)["messaging.message.id"] == retried.id
        assert attrs(second)["messaging.message.id"] == retried.id


EXPECTED_TREE = """\
POST /invoices  [internal, client]
├─ send trace_probe.sync_step  [producer, client]
│  └─ process trace_probe.sync_step  [consumer, worker]  attempt 1: succeeded
├─ send trace_probe.async_step  [producer, client]
│  └─ process trace_probe.async_step  [consumer, worker]  attempt 1: succeeded
│     └─ probe.inner  [internal, worker]
└─ send trace_probe.flaky_once  [producer, client]
   └─ process trace_probe.flaky_once  [consumer, worker]  attempt 1: retried
      └─ process trace_probe.flaky_once  [consumer, worker]  attempt 2: succeeded"""


class TestWithoutOpenTelemetry:
    """OpenTelemetry "not installed" is simulated by `tests/support/no_otel` on PYTHONPATH."""

    def test_import_hexa_and_send_never_try_to_import_opentelemetry(
        self, real_env: dict[str, str], tmp_path: Path
    ) -> None:
        attempts = tmp_path / "attempts"
        code = (
            "import sys, hexa, hexa.metrics\n"
            "@hexa.remote_task('observe_probe.ok')\n"
            "def ok(n: int) -> int: ...\n"
            "ok.send(1)\n"
            "print([m for m in sys.modules if m.startswith('opentelemetry')])"
        )
        env = {**_no_otel_env(attempts), **real_env}
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"
        assert _hexa_attempts(attempts) == []

    @pytest.mark.parametrize(
        ("args", "loaded"),
        [([], []), (["--metrics-port=0"], ["hexa._metrics", "prometheus_client"])],
    )
    def test_a_worker_without_opentelemetry_installed_never_tries_to_import_it(
        self,
        args: list[str],
        loaded: list[str],
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
        tmp_path: Path,
    ) -> None:
        attempts = tmp_path / "attempts"
        env = {**real_env, **_no_otel_env(attempts)}
        start_worker(project(PROJECTS / "observe_probe"), env, ["-c", "1", *args])
        result = plain_client.send_task("observe_probe.loaded_modules")
        assert result.get(timeout=30) == loaded
        assert _hexa_attempts(attempts) == []

    def test_a_worker_with_opentelemetry_installed_but_not_configured_leaves_tracing_off(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        start_worker(project(PROJECTS / "observe_probe"), real_env, ["-c", "1"])
        loaded = plain_client.send_task("observe_probe.loaded_modules").get(timeout=30)
        assert "hexa.tracing" not in loaded  # (redis-py may import opentelemetry itself)


def _no_otel_env(attempts: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(NO_OTEL), str(REPO)])
    env["HEXA_TEST_OTEL_ATTEMPTS"] = str(attempts)
    return env


def _hexa_attempts(attempts: Path) -> list[str]:
    """Modules of hexa that tried to import OpenTelemetry."""
    lines = attempts.read_text().splitlines() if attempts.exists() else []
    return [name for name in lines if name == "hexa" or name.startswith("hexa.")]
