"""The Celery application: one configuration shared by workers and clients."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.app import backends

from hexa._delays import quiet_celery_warning
from hexa._fork import forget_connections_after_fork
from hexa._queues import celery_queue_options
from hexa._result_store import result_backend_class
from hexa._settings import Settings

APP_NAME = "hexa_worker"  # the seed's name; plain Celery clients use it too


def celery_config(settings: Settings) -> dict[str, Any]:
    """The settings a careful Celery user would choose, in one place."""
    return {
        # JSON only: a pickle message could run arbitrary code in the worker.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # At-least-once: ack after the task ran, redeliver if the worker process died.
        # Tasks must therefore be idempotent (the seed says so too).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Celery's own prefetch: reserved messages stay unacknowledged until their task ran,
        # so a worker that dies has them redelivered (HEXA_PREFETCH_MULTIPLIER=1: long tasks).
        "worker_prefetch_multiplier": settings.prefetch_multiplier,
        # Nothing the worker cannot run is dropped: it goes to `<default queue>.dead`.
        "worker_consumer": "hexa._dead_consumer:DeadLetterConsumer",
        "broker_connection_retry_on_startup": True,
        # Heartbeats every HEXA_HEARTBEAT seconds (RabbitMQ's 60 s otherwise): a worker cut
        # off from the broker notices within two of them and reconnects, and the broker
        # redelivers its unacknowledged messages to the others as fast.
        "broker_heartbeat": settings.heartbeat,
        # The worker's remote-control queue (`<name>.celery.pidbox`) not exclusive: Celery
        # 5.5 made it exclusive to its connection, so a worker whose link healed before the
        # broker dropped its old connection died on ResourceLocked when it redeclared it. Not
        # exclusive, it is shared with the old connection until the broker drops that one
        # (auto-deleted 10 s after its last consumer, as before Celery 5.5).
        "control_queue_exclusive": False,
        "broker_transport_options": settings.broker_transport_options,
        "broker_transport": settings.broker_transport,  # embedded: private message files
        "task_default_queue": settings.default_queue,
        **celery_queue_options(settings),  # HEXA_QUEUE_TYPE: classic or quorum queues
        "result_expires": 24 * 3600,
        # A result store that is down costs a task ~2 s, not Celery's 20 retries a second
        # apart: tasks keep running, and `get()` fails fast with ResultBackendError.
        "result_backend_transport_options": {
            "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
        },
        "redis_socket_connect_timeout": 2,
        # `-> None` tasks are published with ignore_result; their failures are still stored,
        # so `hexa status` shows them.
        "task_store_errors_even_if_ignored": True,
        # Task events off until Flower or `celery control enable_events` asks, as in Celery;
        # then sent without publisher confirms (see hexa._events).
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "timezone": "UTC",
        "enable_utc": True,
    }


class HexaCelery(Celery):
    """A Celery app that knows its hexa settings."""

    events_cls = "hexa._task_events:HexaEvents"  # hexa._events', with no password in an event
    amqp_cls = "hexa._delays:DelayingAMQP"  # delayed messages wait on RabbitMQ, not in a worker

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            APP_NAME,
            broker=settings.broker_url,
            backend=settings.result_backend,
            set_as_current=False,
            **kwargs,
        )
        self.hexa_settings = settings
        #: Called by `close()`: what hexa opened for this app (its publishing connection).
        self.hexa_on_close: list[Callable[[], None]] = []
        self.conf.update(celery_config(settings))
        if settings.delays_on_broker:
            quiet_celery_warning()
        forget_connections_after_fork(self)

    def close(self) -> None:
        for callback in self.hexa_on_close:
            callback()
        self.hexa_on_close.clear()
        super().close()

    def _get_backend(self) -> Any:
        """Celery's choice of result backend, made hexa's: see `result_backend_class`."""
        found: Any = backends.by_url(self.conf.result_backend, self.loader)  # (class, url)
        backend_cls, url = found
        return result_backend_class(backend_cls)(app=self, url=url)


def build_app(settings: Settings | None = None) -> HexaCelery:
    """A configured Celery app with no tasks: enough to publish and read results."""
    settings = settings or Settings.from_env()
    settings.make_dirs()
    return HexaCelery(settings)


_lock = threading.Lock()
_current: HexaCelery | None = None


def current_app() -> HexaCelery:
    """The process's app: the worker's inside a worker, else one built from the environment."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = build_app()
    return _current


def use_app(app: HexaCelery | None) -> HexaCelery | None:
    """Make `app` the one `.send()` publishes with (None: rebuild from the environment).

    Returns the app it replaces (None when none was in use), so a caller can put it back.
    """
    global _current
    previous, _current = _current, app
    return previous
