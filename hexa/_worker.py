"""Discovery's second half: task definitions become tasks of one Celery app."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any

from celery import Celery, signals

from hexa._app import HexaCelery, build_app, use_app
from hexa._beat import beat_schedule
from hexa._bridge import bridge
from hexa._celery_task import HexaTask
from hexa._definitions import TaskDefinition, definitions, near_misses
from hexa._exceptions import DuplicateTaskError
from hexa._locator import ServiceLocator, service_locator
from hexa._logging import configure_logging, get_logger
from hexa._observe import start_tracing
from hexa._retry import check_retry_delays
from hexa._settings import Settings

log = get_logger()

#: Seconds between Celery's soft time limit (an exception in the task) and its hard kill.
HARD_LIMIT_GRACE = 5.0


def entry_point(definition: TaskDefinition) -> Callable[..., Any]:
    """What Celery calls: the function itself, or a sync bridge to the event loop."""
    if not definition.is_async:
        return definition.func
    func, timeout = definition.func, definition.timeout

    def run_on_event_loop(*args: Any, **kwargs: Any) -> Any:
        return bridge.run_sync(func, args, kwargs, timeout)

    functools.update_wrapper(run_on_event_loop, func)
    # Celery checks each call against this signature; a bare (*args, **kwargs) would not.
    run_on_event_loop.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
    return run_on_event_loop


def _celery_options(definition: TaskDefinition) -> dict[str, Any]:
    options = dict(definition.options)
    if definition.timeout is not None:
        # Async tasks are cancelled by the bridge at `timeout`; the hard limit is prefork's
        # backstop for a coroutine that blocks the loop, where cancellation cannot land.
        options.setdefault("time_limit", definition.timeout + HARD_LIMIT_GRACE)
        if not definition.is_async:
            options.setdefault("soft_time_limit", definition.timeout)
    return options


def register_task(app: Celery, definition: TaskDefinition) -> None:
    """Add one definition to `app` as a `HexaTask`; a taken name is an error."""
    if definition.name in app.tasks:
        existing = app.tasks[definition.name]
        raise DuplicateTaskError(
            f"task {definition.name!r} from {definition.source} is already registered by "
            f"{getattr(existing, '__module__', '?')}.{getattr(existing, '__qualname__', '?')}; "
            "rename one of them"
        )
    decorate: Callable[[Callable[..., Any]], Any] = app.task(
        name=definition.name,
        base=HexaTask,
        shared=False,
        lazy=False,
        hexa_timeout=definition.timeout,
        **_celery_options(definition),
    )
    decorate(entry_point(definition))


def _connect_signals() -> None:
    signals.setup_logging.connect(_setup_logging, weak=False, dispatch_uid="hexa.logging")
    signals.worker_ready.connect(_ready, weak=False, dispatch_uid="hexa.ready")
    signals.worker_process_shutdown.connect(_stop_bridge, weak=False, dispatch_uid="hexa.bridge.p")
    signals.worker_shutdown.connect(_stop_bridge, weak=False, dispatch_uid="hexa.bridge.w")
    signals.worker_init.connect(start_tracing, weak=False, dispatch_uid="hexa.tracing.w")
    signals.worker_process_init.connect(start_tracing, weak=False, dispatch_uid="hexa.tracing.p")


def _setup_logging(loglevel: Any = "INFO", **_: Any) -> None:
    configure_logging(level=loglevel or "INFO", worker=True)


def _ready(sender: Any = None, **_: Any) -> None:
    log.info("worker.ready", hostname=getattr(sender, "hostname", None))


def _stop_bridge(**_: Any) -> None:
    """Worker (or pool child) shutdown: cancel what is left and close the loop cleanly."""
    if bridge.running:
        bridge.stop()
        log.info("event_loop.stopped", pid=os.getpid())


def _log_report(app: HexaCelery, found: list[TaskDefinition], near: list[str]) -> None:
    settings: Settings = app.hexa_settings
    log.info("worker.connection", **settings.describe())
    services = sorted({d.service for d in found})
    log.info("discovery.services", count=len(services), services=services)
    for definition in found:
        log.info("task.registered", name=definition.name, **definition.settings())
    for note in near:
        log.warning("discovery.near_miss", note=note)
    log.info("discovery.total", tasks=len(found))


def create_celery_worker(
    locator: ServiceLocator = service_locator, settings: Settings | None = None
) -> HexaCelery:
    """The seed's `create_celery_worker()`: every `*_tasks` service becomes Celery tasks.

    Task name: the service name without its `_tasks` suffix, a dot, and the dict key.
    """
    settings = settings or Settings.from_env()
    services = locator.services()
    found = definitions(services)
    for definition in found:  # before anything is created or connected
        check_retry_delays(definition.options, definition.name, settings)
    app = build_app(settings)
    for definition in found:
        register_task(app, definition)
    app.conf.task_routes = {d.name: {"queue": d.queue} for d in found if d.queue}
    app.conf.beat_schedule = beat_schedule(found)
    _connect_signals()
    use_app(app)
    _log_report(app, found, near_misses(services))
    return app
