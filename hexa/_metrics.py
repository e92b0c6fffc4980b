"""hexa's Prometheus metrics (prometheus_client): what is counted, and the /metrics server.

Imported only once metrics are switched on (`hexa.metrics`), and on a worker only after
`PROMETHEUS_MULTIPROC_DIR` is set, so every process of the worker (prefork children, threads,
the main process's dead-letter consumer) writes to files the main process serves together.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Container, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import signals
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from hexa import _hooks
from hexa._celery_task import HexaTask
from hexa._exceptions import ConfigurationError
from hexa._logging import get_logger
from hexa._metrics_folder import process_alive

log = get_logger()

SUCCEEDED, FAILED, RETRIED, DEAD_LETTERED = "succeeded", "failed", "retried", "dead_lettered"
OUTCOMES = (SUCCEEDED, FAILED, RETRIED, DEAD_LETTERED)
CONFIRMED = "confirmed"
#: The label of task names a process does not know (hexa task names always hold a dot).
OTHER = "other"
#: Distinct task names a client labels by name; more than this come out as `other`.
CLIENT_TASK_LIMIT = 1000
RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800)
PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_STARTED = "hexa_metrics_started"  # on Celery's per-run request object
_LIVE_GAUGE = re.compile(r"gauge_live\w*?_(\d+)\.db$")
#: prometheus_client leaves its multiprocess helpers untyped.
_mark_dead: Callable[..., None] = multiprocess.mark_process_dead
_merge: Callable[..., Iterable[Any]] = multiprocess.MultiProcessCollector.merge


class TaskLabels:
    """Task names as label values, in a bounded set: a hostile sender cannot grow it.

    A name in `known` (a worker's registered tasks) is itself; so are the first `limit` other
    names seen; every other name is `other`.
    """

    def __init__(self, limit: int = 0) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, name: str, known: Container[str] = ()) -> str:
        if name in known or name in self._seen:
            return name
        if len(self._seen) < self._limit:
            self._seen.add(name)
            return name
        return OTHER


class WorkerMetrics:
    """Tasks run by this worker: outcomes, run time, in flight (Celery's task signals)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.labels = TaskLabels()
        self.served: dict[str, Any] = {}  # where /metrics is, for the start-up log
        self.tasks = Counter(
            "hexa_tasks",
            "Task runs by outcome: succeeded, failed (for good), retried, dead_lettered",
            ["task", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "hexa_task_duration_seconds",
            "Run time of each attempt, whatever its outcome",
            ["task"],
            buckets=RUN_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "hexa_tasks_in_flight",
            "Tasks running now",
            ["task"],
            multiprocess_mode="livesum",
            registry=registry,
        )

    def connect(self) -> None:
        receivers = {
            signals.task_prerun: self.started,
            signals.task_postrun: self.ended,
            signals.task_success: self.succeeded,
            signals.task_retry: self.retried,
            signals.task_failure: self.failed,
            signals.worker_init: self.worker_init,
            signals.worker_process_shutdown: process_ended,
        }
        for signal, receiver in receivers.items():
            signal.connect(receiver, weak=False, dispatch_uid=f"hexa.metrics.{receiver.__name__}")
        _hooks.on_dead_letter(self.dead_lettered)

    def worker_init(self, sender: Any = None, **_: Any) -> None:
        """Every registered hexa task starts at 0 for every outcome (rate() needs a start)."""
        log.info("metrics.serving", **self.served)
        tasks = getattr(getattr(sender, "app", None), "tasks", {})
        for name in sorted(n for n, t in tasks.items() if isinstance(t, HexaTask)):
            for outcome in OUTCOMES:
                self.tasks.labels(name, outcome)

    def started(self, task: Any = None, **_: Any) -> None:
        self.in_flight.labels(task.name).inc()
        setattr(task.request, _STARTED, time.perf_counter())

    def ended(self, task: Any = None, **_: Any) -> None:
        started = getattr(task.request, _STARTED, None)
        if started is None:
            return
        setattr(task.request, _STARTED, None)
        self.in_flight.labels(task.name).dec()
        self.duration.labels(task.name).observe(time.perf_counter() - started)

    def succeeded(self, sender: Any = None, **_: Any) -> None:
        self.tasks.labels(sender.name, SUCCEEDED).inc()

    def retried(self, sender: Any = None, **_: Any) -> None:
        self.tasks.labels(sender.name, RETRIED).inc()

    def failed(self, sender: Any = None, **_: Any) -> None:
        self.tasks.labels(sender.name, FAILED).inc()

    def dead_lettered(self, app: Any, name: str) -> None:
        self.tasks.labels(self.labels(name, app.tasks), DEAD_LETTERED).inc()


class PublishMetrics:
    """Messages this process published: confirmed or failed, and the time to the confirm."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.labels = TaskLabels(CLIENT_TASK_LIMIT)
        self.publishes = Counter(
            "hexa_publishes",
            "Messages published by .send(): confirmed by the broker, or failed",
            ["task", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "hexa_publish_duration_seconds",
            "Time from .send() publishing a message to the broker's confirm",
            ["task"],
            buckets=PUBLISH_BUCKETS,
            registry=registry,
        )

    @contextmanager
    def observe(self, name: str) -> Iterator[None]:
        label = self.labels(name)
        started = time.perf_counter()
        try:
            yield
        except BaseException:
            self.publishes.labels(label, FAILED).inc()
            raise
        self.duration.labels(label).observe(time.perf_counter() - started)
        self.publishes.labels(label, CONFIRMED).inc()


# -- multiprocess files and the /metrics server ---------------------------------------------


def process_ended(pid: int | None = None, **_: Any) -> None:
    """A pool process exits: its in-flight gauge goes away (counters stay counted)."""
    _mark_dead(pid or os.getpid())


def forget_dead_processes(path: Path) -> list[int]:
    """Drop the live gauges of processes that died without saying so (killed, OOM)."""
    dead = []
    for file in path.iterdir():
        match = _LIVE_GAUGE.match(file.name)
        if match and not process_alive(pid := int(match.group(1))):
            _mark_dead(pid, str(path))
            dead.append(pid)
    return dead


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # a live gauge of a process that just ended
        return 0


class LiveCollector(Collector):
    """Every process's metrics from the shared folder; dead processes are not in flight.

    prometheus_client's own collector fails the whole scrape when it reads a file a process
    has just created and not yet sized (a pool process's first task): those are skipped.
    """

    def __init__(self, path: Path) -> None:
        self.folder = path

    def collect(self) -> Iterable[Any]:
        forget_dead_processes(self.folder)
        files = sorted(str(f) for f in self.folder.glob("*.db") if _size(f) > 0)
        return _merge(files, accumulate=True)


def check_multiprocess() -> None:
    """prometheus_client picks its storage at import: it must see PROMETHEUS_MULTIPROC_DIR."""
    if getattr(values.ValueClass, "__name__", "") != "MmapedValue":
        raise ConfigurationError(
            "prometheus_client was imported before hexa set PROMETHEUS_MULTIPROC_DIR, so "
            "worker processes would not share metrics; call hexa.metrics.serve_worker_metrics() "
            "before anything imports prometheus_client"
        )


def serve(port: int, addr: str, path: Path) -> tuple[int, WorkerMetrics]:
    """Serve /metrics from `path` on `addr:port` (a thread of this process); the bound port."""
    check_multiprocess()
    registry = CollectorRegistry()
    registry.register(LiveCollector(path))
    try:
        server, _ = start_http_server(port, addr, registry=registry)
    except OSError as error:
        raise ConfigurationError(
            f"--metrics-port {port}: cannot listen on {addr}:{port} ({error.strerror}); "
            "choose a free port"
        ) from None
    metrics = WorkerMetrics()
    metrics.served = {"port": int(server.server_port), "path": "/metrics", "folder": str(path)}
    metrics.connect()
    return int(server.server_port), metrics
