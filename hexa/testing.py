"""Testing helpers for hexa tasks, and the pytest plugin that exposes them as fixtures.

- `in_process_worker()` / the `hexa_worker` fixture: a real Celery worker in a thread of the
  test process, on Celery's in-memory broker and result store, so `task.send(...).get()` works in
  a unit test with no server.
- `run_eagerly(task, *args)`: run a task here and now, with its retry policy applied the way
  Celery applies it, and report the attempts and the delays a worker would have waited.
- `capture_logs()` / the `hexa_logs` fixture: the structlog events logged meanwhile, such as
  `task.retry` and `task.failed`.

pytest loads this module through the `hexa` entry point in every session of a project that has
hexa installed, so importing it must change nothing: all state is set and restored by the
fixtures and context managers themselves.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar

import attrs
import pytest
import structlog
from celery import _state, signals
from celery.backends.cache import CacheBackend
from celery.contrib.testing.worker import TestWorkController
from celery.worker import state as worker_state
from kombu import Connection
from kombu.transport import memory

from hexa._app import HexaCelery, use_app
from hexa._arguments import bind_arguments, check_json
from hexa._definitions import TaskDefinition, definition
from hexa._exceptions import DiscoveryError
from hexa._locator import service_locator
from hexa._modules import ModuleRegistry, discover_modules, register_tasks_service
from hexa._registry import TASKS_SUFFIX, registry
from hexa._settings import Settings
from hexa._task import BaseTask
from hexa._worker import create_celery_worker, register_task

__all__ = [
    "EagerRun",
    "EventLog",
    "InProcessWorker",
    "capture_logs",
    "hexa_logs",
    "hexa_modules",
    "hexa_worker",
    "in_process_worker",
    "memory_settings",
    "run_eagerly",
]

#: Celery's process state (default app, join guard) and the worker's stop flag; untyped.
celery_state: Any = _state
worker_flags: Any = worker_state

P = ParamSpec("P")
R = TypeVar("R")

#: Celery's in-memory transport and result store: one process, no server, nothing on disk.
MEMORY_BROKER = "memory://localhost/"
MEMORY_BACKEND = "hexa.testing.MemoryResultBackend+memory://"


class MemoryTransport(memory.Transport):
    """kombu's in-memory transport; the worker's idle wait is cut to 0.1 s so it stops at once.

    Celery's worker loop waits up to 2 s for a message before checking whether it should
    stop; on a transport that polls anyway, a shorter wait costs nothing.
    """

    # celery-types gives kombu's base and virtual Transport different signatures: the virtual one.
    def drain_events(  # type: ignore[override]
        self, connection: Connection, timeout: float | None = None
    ) -> None:
        super().drain_events(connection, timeout=min(timeout or 0.1, 0.1))


class MemoryResultBackend(CacheBackend):
    """Celery's in-memory result store, polled every 10 ms instead of every 500 ms."""

    def wait_for(
        self,
        task_id: str,
        timeout: float | None = None,
        interval: float = 0.5,
        no_ack: bool = True,
        on_interval: Callable[[], None] | None = None,
    ) -> Any:
        return super().wait_for(task_id, timeout, min(interval, 0.01), no_ack, on_interval)


def memory_settings(queue: str | None = None) -> Settings:
    """Settings for the in-memory broker, with a queue of its own (unique unless given)."""
    return Settings(
        broker_url=MEMORY_BROKER,
        result_backend=MEMORY_BACKEND,
        home=Path.cwd() / ".hexa",  # only the embedded broker writes there; memory never does
        default_queue=queue or f"hexa-testing-{uuid.uuid4().hex[:10]}",
    )


# --- log capture ---------------------------------------------------------------------------


class EventLog(list[dict[str, Any]]):
    """The captured events, oldest first; each is the event dict plus `log_level`."""

    def named(self, event: str) -> list[dict[str, Any]]:
        """The events called `event`, e.g. `logs.named("task.retry")`."""
        return [entry for entry in self if entry.get("event") == event]

    def names(self) -> list[str]:
        """Every event's name, in order: handy for `assert logs.names() == [...]`."""
        return [str(entry.get("event")) for entry in self]


@contextmanager
def capture_logs() -> Iterator[EventLog]:
    """Collect the structlog events logged inside the block (from any thread), silently.

    Like `structlog.testing.capture_logs()`, but it also sees loggers that structlog already
    cached (hexa's worker configures `cache_logger_on_first_use`): the capturing processor is
    put in front of the configured processor list itself rather than in a replacement list.
    The log context (`task_id`, `task`) is merged into each captured event.
    """
    events = EventLog()

    def capture(_: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        events.append(
            {**structlog.contextvars.get_contextvars(), **event_dict, "log_level": method_name}
        )
        raise structlog.DropEvent

    processors = structlog.get_config()["processors"]
    if not isinstance(processors, list):  # configured with a tuple: cannot insert in place
        with structlog.testing.capture_logs() as plain:
            yield events
        events.extend(dict(event) for event in plain)
        return
    processors.insert(0, capture)
    try:
        yield events
    finally:
        processors.remove(capture)


# --- eager runs ----------------------------------------------------------------------------


@attrs.frozen
class EagerRun(Generic[R]):
    """What `run_eagerly` saw: the outcome, how many attempts, and the retry delays."""

    status: str  # SUCCESS or FAILURE, as a worker would store it
    attempts: int
    delays: tuple[float | None, ...]  # the countdown chosen before each retry, in seconds
    result: R | None = None
    error: BaseException | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"

    def get(self) -> R:
        """The result; re-raises the last error when every attempt failed."""
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # SUCCESS: the task's own value


def _definition_of(task: BaseTask[Any, Any]) -> TaskDefinition:
    return definition(task.spec.module + TASKS_SUFFIX, task.spec.name, task)


@contextmanager
def _count_runs(sender: Any) -> Iterator[tuple[list[str], list[float | None]]]:
    """Task ids of every attempt and the delay of every retry, of one Celery task."""
    runs: list[str] = []
    delays: list[float | None] = []

    def on_prerun(sender: Any = None, task_id: str = "", **_: Any) -> None:
        runs.append(task_id)

    def on_retry(sender: Any = None, reason: Any = None, **_: Any) -> None:
        when = getattr(reason, "when", None)
        delays.append(float(when) if isinstance(when, int | float) else None)

    signals.task_prerun.connect(on_prerun, sender=sender, weak=False)
    signals.task_retry.connect(on_retry, sender=sender, weak=False)
    try:
        yield runs, delays
    finally:
        signals.task_prerun.disconnect(on_prerun, sender=sender)
        signals.task_retry.disconnect(on_retry, sender=sender)


def run_eagerly(task: BaseTask[P, R], /, *args: P.args, **kwargs: P.kwargs) -> EagerRun[R]:
    """Run `task` in this process with its retry policy applied, without sleeping.

    The arguments get the same checks as `.send()`. Celery's own eager mode (`Task.apply`)
    runs the attempts, so autoretry, backoff, jitter and `bind=True` behave as on a worker;
    the delays a worker would have waited are reported instead of slept. The task's
    `task.retry`/`task.failed`/`task.succeeded` events are logged as on a worker.
    """
    bind_arguments(task.name, task.spec.signature, args, kwargs)
    check_json(task.name, args, kwargs)
    app = HexaCelery(memory_settings())
    try:
        register_task(app, _definition_of(task))
        celery_task = app.tasks[task.name]
        with _count_runs(celery_task) as (runs, delays):
            outcome = celery_task.apply(args=tuple(args), kwargs=dict(kwargs))
        failed = outcome.state == "FAILURE"
        return EagerRun(
            status=str(outcome.state),
            attempts=len(runs),
            delays=tuple(delays),
            result=None if failed else outcome.result,
            error=outcome.result if failed else None,
        )
    finally:
        app.close()


# --- in-process worker ---------------------------------------------------------------------


@attrs.frozen
class InProcessWorker:
    """A running in-process worker: its app (which `.send()` uses meanwhile) and its names."""

    app: HexaCelery
    hostname: str
    queues: tuple[str, ...]
    task_names: list[str]  # the hexa tasks this worker runs, sorted


@contextmanager
def _restored_state() -> Iterator[None]:
    """Give back the app, locator and module registry a test had before the worker."""
    previous_app = use_app(None)  # the worker installs its own app next; this one comes back
    services = service_locator.services()
    modules = list(ModuleRegistry())
    try:
        yield
    finally:
        use_app(previous_app)
        service_locator.clear()
        for name, service in services.items():
            service_locator.register(name, service)
        ModuleRegistry().clear()
        for module in modules:
            ModuleRegistry().register(module)


def _require_importable(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise DiscoveryError(
            f"no {package!r} package importable in this test session (cwd {Path.cwd()}); run "
            'pytest from the project\'s root with pythonpath = ["."] in its configuration, '
            "or override the hexa_modules fixture (None: the tasks @module_task declared)"
        )


def _load_tasks(package: str | None) -> list[TaskDefinition]:
    """Fill the service locator as the worker does: discovery, or the registry's tasks."""
    ModuleRegistry().clear()
    service_locator.clear()
    if package is not None:
        _require_importable(package)
        return discover_modules(package, "module.py").tasks
    for name, tasks in registry.services().items():
        service_locator.register(name, tasks)
    return register_tasks_service(service_locator)


def _queues(app: HexaCelery, found: list[TaskDefinition]) -> tuple[str, ...]:
    routed = {d.queue for d in found if d.queue}
    return (app.hexa_settings.default_queue, *sorted(routed))


@contextmanager
def _worker_thread(
    app: HexaCelery, found: list[TaskDefinition], pool: str, concurrency: int
) -> Iterator[InProcessWorker]:
    """Celery's own test worker in a daemon thread; stopped (and joined) on exit."""
    # Never touch the test session's logging configuration (Celery's worker would).
    app.log.already_setup = True  # type: ignore[misc]
    hostname = f"hexa-testing-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    queues = _queues(app, found)
    worker = TestWorkController(
        app=app, hostname=hostname, pool=pool, concurrency=concurrency, queues=list(queues),
        loglevel="WARNING", ready_callback=None, without_heartbeat=True,
        without_mingle=True, without_gossip=True,
    )  # fmt: skip
    thread = threading.Thread(target=worker.start, name=hostname, daemon=True)
    previous_default = celery_state.default_app
    app.set_default()  # pools outside the solo one look the task up in Celery's default app
    thread.start()
    worker.ensure_started()
    celery_state._set_task_join_will_block(False)
    try:
        names = sorted(d.name for d in found)
        yield InProcessWorker(app=app, hostname=hostname, queues=queues, task_names=names)
    finally:
        worker_flags.should_terminate = 0
        thread.join(30)
        worker_flags.should_terminate = None
        celery_state.default_app = previous_default


@contextmanager
def in_process_worker(
    package: str | None = "modules", *, pool: str = "solo", concurrency: int = 1
) -> Iterator[InProcessWorker]:
    """Run a real worker in this process on the in-memory broker, for the block's duration.

    `package` is discovered as `hexa worker` discovers `modules` (it must be importable);
    `None` takes the tasks `@module_task` has declared so far instead. Inside the block
    `.send()` and `tasks_service` publish to this worker; afterwards the previous app,
    service locator and module registry are back. `pool="threads"` with `concurrency=N`
    runs N tasks at once.
    """
    with _restored_state():
        found = _load_tasks(package)
        app = create_celery_worker(service_locator, memory_settings())
        # The memory transport polls its queues; Celery's default of 1 s would slow every test.
        app.conf.broker_transport_options = {"polling_interval": 0.01}
        app.conf.broker_transport = MemoryTransport
        try:
            with _worker_thread(app, found, pool, concurrency) as worker:
                yield worker
        finally:
            app.close()


# --- pytest fixtures -----------------------------------------------------------------------


@pytest.fixture
def hexa_modules() -> str | None:
    """The package `hexa_worker` discovers. Override it: another name, or None (registry)."""
    return "modules"


@pytest.fixture
def hexa_worker(hexa_modules: str | None) -> Iterator[InProcessWorker]:
    """A real in-process worker on the in-memory broker; `.send(...).get()` reaches it."""
    with in_process_worker(hexa_modules) as worker:
        yield worker


@pytest.fixture
def hexa_logs() -> Iterator[EventLog]:
    """The structlog events logged during the test (`hexa_logs.named("task.retry")`)."""
    with capture_logs() as events:
        yield events
