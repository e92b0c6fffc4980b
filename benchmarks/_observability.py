"""Metrics and tracing on against off: what observability costs a worker and a caller.

Worker: hexa workers on prefork 2 run the sync no-op in alternating blocks; two with nothing
switched on (their ratio is the A/A floor), one with `HEXA_METRICS_PORT`, one with metrics
and OpenTelemetry traces from the environment (`OTEL_TRACES_EXPORTER=none`: the SDK makes and
ends every span but exports none, so the figure is hexa's and the SDK's own cost; an
exporter's comes on top and depends on it). Every message carries a `traceparent` header, so
the traced worker continues a trace as it would in production.

Caller: `.send()` CPU per message in a fresh process each block, with client metrics and a
tracer provider (producer span, context injected) against without, alternating.
`python -m benchmarks._observability publish on|off N` is that process.

`python -m benchmarks._observability hooks` times the instrumentation alone, without broker
or worker (CPU µs per task run and per publish, nothing on / metrics / metrics + tracing):
the figures docs/observability.md quotes beside the rows, steadier on a busy machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from benchmarks._stats import compare
from benchmarks._workers import Worker
from hexa._app import APP_NAME, celery_config

SCENARIO = "6. observability, sync no-op, prefork 2"
RESULT_PREFIX = "celery-task-meta-"
TRACEPARENT = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
WORKER_ENV = {
    "off": {},
    "off2": {},
    "metrics": {"HEXA_METRICS_PORT": "0"},
    "metrics+tracing": {"HEXA_METRICS_PORT": "0", "OTEL_TRACES_EXPORTER": "none"},
}
NOTE = (
    "'raw' column: the same hexa worker with nothing switched on; A/A: a second such worker; "
    "tracing: SDK spans made and ended, no exporter"
)


@dataclass
class Arm:
    name: str
    worker: Worker
    app: Celery
    cost: list[tuple[float, float]] = field(default_factory=list)


def observability(bench: Any) -> None:
    """The rows of scenario 6: worker CPU per task with metrics, and with tracing; `.send()`."""
    rounds, block = (2, 150) if bench.plan.quick else (6, 400)
    arms = [_arm(bench, name) for name in WORKER_ENV]
    for arm in arms:  # start-up and the first task's imports are not part of any block
        _block(bench, arm, 1)
        arm.cost.clear()
    for index in range(rounds):
        shift = index % len(arms)
        for arm in arms[shift:] + arms[:shift]:
            _block(bench, arm, block)
    off, off2, metrics, traced = arms
    bench.rows += [
        compare(
            SCENARIO,
            f"worker CPU per task, {arm.name} on",
            "µs",
            arm.cost,
            off.cost,
            off2.cost,
            note=NOTE,
        )
        for arm in (metrics, traced)
    ]
    bench.stop(*[arm.worker for arm in arms])
    bench.rows.append(_publish_row(bench, rounds, 300 if bench.plan.quick else 1000))


def _arm(bench: Any, name: str) -> Arm:
    queue = bench.queue(f"observe-{name.replace('+', '-')}")
    env = {**bench.env, **WORKER_ENV[name]}
    worker = Worker("hexa", bench.project, queue, env, bench.logs)
    bench.workers.append(worker)
    app = Celery(APP_NAME, broker=bench.broker, backend=bench.backend, set_as_current=False)
    app.conf.update(celery_config(bench.settings(queue)))
    bench.apps.append(app)
    return Arm(name, worker, app)


def _block(bench: Any, arm: Arm, count: int) -> None:
    """Send `count` no-ops, wait for every result; the worker group's CPU over the block."""
    cpu = arm.worker.cpu()
    ids = [str(arm.app.send_task("bench.noop", headers=TRACEPARENT).id) for _ in range(count)]
    _wait(bench, [RESULT_PREFIX + i for i in ids])
    time.sleep(0.05)  # the other pool process may still be acknowledging its last task
    arm.cost.append((arm.worker.cpu() - cpu, count))
    bench.redis.delete(*[RESULT_PREFIX + i for i in ids])


def _wait(bench: Any, keys: list[str], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    pending = keys
    while pending:
        found = bench.redis.mget(pending)
        pending = [k for k, v in zip(pending, found, strict=True) if v is None]
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} of {len(keys)} results missing after {timeout}s")
        if pending:
            bench.check_workers()
            time.sleep(0.01)


# -- the caller's side: one fresh process per block --------------------------------------


def _publish_row(bench: Any, rounds: int, count: int) -> Any:
    queue = bench.queue("observe-publish")
    samples: dict[str, list[tuple[float, float]]] = {"off": [], "on": [], "off2": []}
    modes = list(samples)
    for index in range(rounds):
        shift = index % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            samples[mode].append((_publisher_cpu(bench, queue, mode, count), count))
    return compare(
        SCENARIO,
        "client CPU per .send(), client metrics + tracing on",
        "µs",
        samples["on"],
        samples["off"],
        samples["off2"],
        note="'raw' column: the same .send() with neither; A/A: a second run without",
    )


def _publisher_cpu(bench: Any, queue: str, mode: str, count: int) -> float:
    env = {**os.environ, **bench.env, "HEXA_DEFAULT_QUEUE": queue}
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks._observability",
            "publish",
            mode.rstrip("2"),
            str(count),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    seconds: float = json.loads(done.stdout.splitlines()[-1])["cpu"]
    return seconds


def publish_main(mode: str, count: int) -> None:
    """In a fresh process: `count` `.send()`s after a warm-up; prints their CPU seconds."""
    import hexa
    from benchmarks import bench_tasks

    if mode == "on":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        import hexa.metrics

        trace.set_tracer_provider(TracerProvider())
        hexa.metrics.enable_client_metrics()
    hexa.use_app(hexa.build_app())
    with tracer_span() if mode == "on" else _nothing():
        for _ in range(50):
            bench_tasks.noop_none.send()
        started = time.process_time()
        for _ in range(count):
            bench_tasks.noop_none.send()
        print(json.dumps({"cpu": time.process_time() - started}))


def tracer_span() -> Any:
    """The request a web app would be serving: every `.send()` is a child of one span."""
    from opentelemetry import trace

    return trace.get_tracer("bench").start_as_current_span("request")


def _nothing() -> Any:
    import contextlib

    return contextlib.nullcontext()


def hooks_main(count: int = 20000) -> None:
    """CPU µs per task run and per publish spent in hexa's hooks: off, metrics, + tracing."""
    import tempfile
    from types import SimpleNamespace

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hexa-bench-metrics-")
    from celery import signals
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from hexa import _hooks, _metrics, _observe, tracing

    class Task:  # the part of a Celery task the hooks read
        name, request = "bench.noop", SimpleNamespace()

    task = Task()

    def run_and_publish() -> tuple[float, float]:
        started = time.process_time()
        for _ in range(count):
            task.request = SimpleNamespace(id="1", retries=0, delivery_info={}, **TRACEPARENT)
            signals.task_prerun.send(sender=task, task_id="1", task=task, args=(), kwargs={})
            signals.task_success.send(sender=task, result=1)
            signals.task_postrun.send(sender=task, task_id="1", task=task, state="SUCCESS")
        ran = time.process_time()
        for _ in range(count):
            with _observe.publishing("bench.noop"):
                signals.before_task_publish.send(sender="bench.noop", headers={"id": "1"})
        return (ran - started) / count * 1e6, (time.process_time() - ran) / count * 1e6

    figures = {"off": run_and_publish()}
    _metrics.WorkerMetrics().connect()
    _hooks.on_publish(_metrics.PublishMetrics(None).observe)
    figures["metrics"] = run_and_publish()
    trace.set_tracer_provider(TracerProvider())
    tracing.install()
    figures["metrics+tracing"] = run_and_publish()
    for name, (run, publish) in figures.items():
        print(f"{name:16} {run:6.1f} µs per task run  {publish:6.1f} µs per publish")


if __name__ == "__main__":
    if sys.argv[1:2] == ["publish"]:
        publish_main(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["hooks"]:
        hooks_main()
