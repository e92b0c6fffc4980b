"""Publishing: the one place a message leaves the process.

Celery's `send_task` redoes, for every message, work whose answer never changes for one task
and one queue (routing, queue lookup, declaring the queue through a retrying wrapper), and
with the Redis result backend it subscribes to the result's channel at publish time: about
45 % of the publish cost, and after a burst the backlog of subscription replies stalls the
next `.get()` for up to a second. Here routing is resolved once per task and queue, and the
result handle subscribes only when someone waits for it. The message itself is still made
by Celery's `create_task_message` and sent by its `send_task_message`: plain Celery protocol
that any Celery worker accepts, with `before_task_publish`/`after_task_publish` firing.

On RabbitMQ every publish waits for the broker's confirm. A publish that fails (broker
restarting, connection blocked by a resource alarm) is retried with the same task id until
`Settings.publish_timeout` runs out, then `PublishError` says so: `send()` either returns
once the broker holds the message, or raises; it never hangs and never drops silently.
There, the message is written on the process's own publishing connection and its confirm is
waited for by delivery tag (`hexa._confirms`), so concurrent callers share round trips, and
inside `hexa.batch()` the confirms are waited for together at the end of the block.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
import uuid as uuid_module
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from amqp.exceptions import AMQPError, MessageNacked
from celery import Celery, signals
from celery.app.routes import MapRoute
from celery.backends.base import BaseBackend
from celery.backends.redis import RedisBackend
from celery.result import AsyncResult
from celery.utils.nodenames import anon_nodename
from celery.utils.saferepr import saferepr
from celery.utils.time import maybe_make_aware
from kombu import Queue
from kombu import serialization as kombu_serialization
from kombu.common import Broadcast
from kombu.exceptions import KombuError
from kombu.serialization import dumps
from kombu.utils import json as kombu_json
from kombu.utils.uuid import uuid

from hexa._app import current_app
from hexa._arguments import check_size, max_message_size
from hexa._batch import current_batch
from hexa._confirms import ConfirmChannel, Ticket, failed
from hexa._delays import check_delay
from hexa._exceptions import PublishError
from hexa._frames import Framed, Template
from hexa._observe import observed
from hexa._options import SendOptions
from hexa._outbox import active_outbox
from hexa._queues import queue_mismatch
from hexa._result import TaskResult
from hexa._settings import DEFAULT_PUBLISH_TIMEOUT, mask, split_urls
from hexa._wire import Outgoing, Wire, after_publish, destination, writable

T = TypeVar("T")

#: What a publish raises when the broker is unreachable or does not confirm.
BROKER_ERRORS: tuple[type[BaseException], ...] = (KombuError, OSError, AMQPError, MessageNacked)
#: Longest wait for one confirm; the publish deadline bounds the attempts together.
CONFIRM_TIMEOUT = 5.0
_PAUSE = 0.5  # between attempts while the broker is away
#: kombu's own retry is off: a failed attempt drops its connection, the next one reconnects.
_NO_KOMBU_RETRY = {"max_retries": 0}
#: The third part of every message body `send()` makes: no callbacks, chain or chord.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
#: What a route may hold for the message to be made from a `Template`.
_TEMPLATE_ROUTE_KEYS = frozenset({"queue", "exchange", "routing_key"})


def stores_result(signature: inspect.Signature) -> bool:
    """False for a function annotated `-> None`: it has nothing worth storing or waiting for."""
    return signature.return_annotation not in (None, "None")


def _needs_task_call_hook(backend: Any) -> bool:
    """Whether publishing must tell the backend (the RPC backend declares its reply queue).

    Redis only subscribes early there, which `TaskResult` does on demand instead.
    """
    if isinstance(backend, RedisBackend):
        return False
    return type(backend).on_task_call is not BaseBackend.on_task_call


def _pipelines(app: Celery, call_hook: bool, sent_event: bool) -> bool:
    """Whether this app publishes on its own confirm channel: RabbitMQ (py-amqp) with
    confirms, and nothing else that needs kombu's producer (a backend hook, sent events,
    compression)."""
    conf = app.conf
    if call_hook or sent_event or conf.task_compression:
        return False
    if not (conf.broker_transport_options or {}).get("confirm_publish"):
        return False
    conn = app.connection_for_write()
    try:
        return bool(conn.transport.driver_type == "amqp" and conn.transport_cls != "librabbitmq")
    finally:
        conn.release()


def _args_depend_on_call(app: Celery) -> bool:
    """A router function may look at the arguments; plain `task_routes` mappings never do."""
    return not all(isinstance(route, MapRoute) for route in app.amqp.routes)


class Publisher:
    """What one app needs to publish, worked out once and kept for the app's life."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._routes: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._origin = ("", 0)
        conf = app.conf
        self._sent_event = bool(conf.task_send_sent_event)
        self._inherit_priority = bool(conf.task_inherit_parent_priority)
        self._repr_levels = conf.task_repr_maxlevels
        self._call_hook = _needs_task_call_hook(app.backend)
        self._dynamic_routes = _args_depend_on_call(app)
        self._pipelined = _pipelines(app, self._call_hook, self._sent_event)
        self._confirms: tuple[int, ConfirmChannel] | None = None
        self._next_broker = 0  # where `_connect` starts in the broker list
        self._wire = Wire.of(app)
        self._repr_sizes = (app.amqp.argsrepr_maxsize, app.amqp.kwargsrepr_maxsize)
        #: Messages from templates: the pipelined path, JSON, Celery's protocol 2, and
        #: routes that never look at the arguments.
        self._templated = (
            self._pipelined
            and conf.task_serializer == "json"
            and conf.task_protocol == 2
            and not self._dynamic_routes
        )
        self._templates: dict[tuple[str, str | None, bool], Template | None] = {}

    def route(
        self, name: str, queue: str | None, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Celery's routing answer (queue, exchange, routing key) for this task and queue."""
        key = (name, queue)
        cached = self._routes.get(key)
        if cached is None or self._dynamic_routes:
            options = {"queue": queue} if queue else {}
            cached = self.app.amqp.router.route(options, name, tuple(args), dict(kwargs), None)
            with self._lock:
                self._routes[key] = cached
        return cached

    def origin(self) -> str:
        """`gen<pid>@<host>`, as Celery writes it; recomputed in a forked child."""
        pid = os.getpid()
        if self._origin[1] != pid:
            self._origin = (anon_nodename(), pid)
        return self._origin[0]

    @observed  # metrics and a producer span around each publish, when switched on
    def publish(
        self,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: SendOptions,
        default_queue: str | None = None,
        store_result: bool = True,
    ) -> TaskResult[Any]:
        """Make and send one task message; returns before any result subscription."""
        if (options.countdown or options.eta) and self._delays_on_broker:
            return self._send_task(name, args, kwargs, options, default_queue, store_result)
        task_id = uuid()
        parent = self.app.current_worker_task  # a task publishing from inside a worker
        framed = self._framed(task_id, name, args, kwargs, options, default_queue, parent,
                              store_result)  # fmt: skip
        if framed is not None:
            self._send_pipelined(framed)
        else:
            route = self._delivery(name, args, kwargs, options, default_queue, parent)
            message = self._message(task_id, name, args, kwargs, options, parent, store_result)
            self._send_confirmed(name, task_id, message, route, store_result)
        result: TaskResult[Any] = TaskResult(task_id, self.app, task_name=name, stored=store_result)
        if parent is not None:
            parent.add_trail(result.celery_result)
        return result

    # -- messages from templates (the common case) -------------------------------------

    def _framed(
        self,
        task_id: str,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: SendOptions,
        default_queue: str | None,
        parent: Any,
        store_result: bool,
    ) -> Framed | None:
        """The message encoded from its task's template; None when something about this call
        needs Celery's message building: a delay, expiry or priority, publish signals with
        receivers (tracing is one), an inherited priority."""
        if not self._templated or (
            options.countdown is not None
            or options.eta is not None
            or options.expires is not None
            or options.priority is not None
            or signals.before_task_publish.receivers
            or signals.after_task_publish.receivers
        ):
            return None
        request = getattr(parent, "request", None)
        if request is not None and _inherits_priority(request, self._inherit_priority):
            return None
        queue = options.queue or default_queue
        key = (name, queue, store_result)
        if key in self._templates:
            template = self._templates[key]
        else:
            template = self._template(name, queue, store_result, args, kwargs)
            with self._lock:
                self._templates[key] = template
        if template is None:
            return None
        return template.message(
            task_id,
            (request and (request.root_id or request.id)) or task_id,
            request and request.id,
            self._repr(args, self._repr_sizes[0]),
            self._repr(kwargs, self._repr_sizes[1]),
            self.origin(),
            self.app.thread_oid,
            _json_body((list(args), dict(kwargs), _EMBED)),
        )

    def _template(
        self,
        name: str,
        queue_name: str | None,
        store_result: bool,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> Template | None:
        """What every message of `name` to this queue shares, or None when its route needs
        Celery's path (an exchange of another type, options only Celery knows)."""
        route = self.route(name, queue_name, args, kwargs)
        queue = route.get("queue")
        if not route.keys() <= _TEMPLATE_ROUTE_KEYS or not isinstance(queue, Queue | None):
            return None
        queue = queue or self.app.amqp.default_queue
        mode = self._wire.mode_of(queue)
        if mode not in (1, 2):
            return None
        exchange, routing_key = destination(self.app, queue, route)
        declare = None if isinstance(queue, Broadcast) else queue
        return Template.make(name, exchange, routing_key, declare, mode, not store_result)

    def _delivery(
        self,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: SendOptions,
        default_queue: str | None,
        parent: Any,
    ) -> dict[str, Any]:
        """Routing plus the message's priority (its own, else the parent task's) and TTL."""
        route = dict(self.route(name, options.queue or default_queue, args, kwargs))
        priority = options.priority
        if priority is None and parent is not None and self._inherit_priority:
            priority = (parent.request.delivery_info or {}).get("priority")
        if priority is not None:
            route["priority"] = priority
        if options.expires is not None:
            route["expiration"] = self._expiration(options.expires)
        return route

    def _message(
        self,
        task_id: str,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: SendOptions,
        parent: Any,
        store_result: bool,
    ) -> Any:
        """Celery's own protocol-2 message, with what `send_task` would put in it."""
        amqp, request = self.app.amqp, getattr(parent, "request", None)
        return amqp.create_task_message(
            task_id,
            name,
            list(args),
            dict(kwargs),
            countdown=options.countdown,
            eta=options.eta,
            expires=options.expires,
            reply_to=self.app.thread_oid,
            create_sent_event=self._sent_event,
            root_id=request and (request.root_id or request.id),
            parent_id=request and request.id,
            origin=self.origin(),
            ignore_result=not store_result,
            argsrepr=self._repr(args, self._repr_sizes[0]),
            kwargsrepr=self._repr(kwargs, self._repr_sizes[1]),
        )

    def _repr(self, value: Any, size: int) -> str:
        """Celery's `saferepr`, skipped when the plain repr is already short (most calls):
        the arguments passed `check_json`, so their repr is plain data."""
        text = repr(value) if len(value) <= 8 else ""
        if text and len(text) <= size:
            return text
        return str(saferepr(value, size, maxlevels=self._repr_levels))

    def _send_confirmed(
        self, name: str, task_id: str, message: Any, route: dict[str, Any], store_result: bool
    ) -> None:
        """Send one task message; return once the broker confirmed it, else `PublishError`
        (inside `hexa.batch()`: confirmed at the block's end). The outbox relay uses it too."""
        if self._pipelined and writable(route) and not self._waits_on_broker(message):
            self._send_pipelined(self._wire.outgoing(name, message, route))
        else:
            self._send_with_kombu(name, task_id, message, route, store_result)

    # -- the pipelined path (RabbitMQ with confirms) ------------------------------------

    def confirm_channel(self) -> ConfirmChannel:
        """This process's publishing connection (a forked child opens its own)."""
        found, pid = self._confirms, os.getpid()
        if found is None or found[0] != pid:
            with self._lock:
                found = self._confirms
                if found is None or found[0] != pid:
                    found = self._confirms = (pid, ConfirmChannel(self._connect))
                    getattr(self.app, "hexa_on_close", []).append(found[1].close)
        return found[1]

    def _connect(self) -> Any:
        """A connection to the first broker of the list that answers, starting after the one
        whose connection was lost last: a cluster's nodes in turn, the dead one last."""
        urls = broker_list(self.app)
        error: BaseException = ConnectionError("no broker URL")
        for offset in range(len(urls)):
            index = (self._next_broker + offset) % len(urls)
            conn = self.app.connection_for_write(
                url=urls[index],
                transport_options={"confirm_publish": False},
                heartbeat=_heartbeat(self.app),
            )
            try:
                conn.ensure_connection(max_retries=0)  # one attempt; the caller retries
            except BROKER_ERRORS as failure:
                conn.collect()
                error = failure
                continue
            # When this connection is lost, the next one is tried on the next broker first.
            self._next_broker = index + 1
            return conn
        raise error

    def _send_pipelined(self, sent: Outgoing | Framed) -> None:
        """Write it and wait for its confirm; inside `hexa.batch()`, only write it."""
        batch = current_batch()
        if batch is not None:
            batch.add(self, (sent, self._write(sent)))
        else:
            until_confirmed(
                self.app, sent.name, lambda confirm: self._write_and_wait(sent, confirm)
            )
        if isinstance(sent, Outgoing):  # a templated message: no receivers (checked)
            after_publish(sent)

    def _write(self, sent: Outgoing | Framed) -> Ticket:
        try:
            return _publish_on(self.confirm_channel(), sent)
        except BROKER_ERRORS as error:  # sent again when the batch is confirmed
            return failed(error)

    def _write_and_wait(self, sent: Outgoing | Framed, confirm: float) -> None:
        channel = self.confirm_channel()
        channel.wait([_publish_on(channel, sent)], confirm)

    def confirm_batch(self, sent: list[tuple[Outgoing | Framed, Ticket]]) -> None:
        """Every message of a batch confirmed, sending again what failed, until the deadline."""
        timeout = _publish_timeout(self.app)
        deadline = time.monotonic() + timeout
        while True:
            confirm = max(0.5, min(CONFIRM_TIMEOUT, deadline - time.monotonic()))
            self.confirm_channel().settle([t for _, t in sent], confirm)
            sent = [(s, t) for s, t in sent if not t.done or t.error is not None]
            if not sent:
                return
            if time.monotonic() + _PAUSE >= deadline:
                raise _batch_error(self.app, sent, timeout)
            time.sleep(_PAUSE)
            sent = [(s, self._write(s)) for s, _ in sent]

    # -- kombu's producer (other transports, or what the pipelined path does not send) --

    def _send_with_kombu(
        self,
        name: str,
        task_id: str,
        message: Any,
        route: dict[str, Any],
        store_result: bool,
    ) -> None:
        """Celery's `send_task_message` through kombu, retried until confirmed."""

        def attempt(confirm: float) -> None:
            options = dict(route, confirm_timeout=confirm, retry_policy=_NO_KOMBU_RETRY)
            self._send(name, task_id, message, options, store_result)

        until_confirmed(self.app, name, attempt)

    def _send(
        self,
        name: str,
        task_id: str,
        message: Any,
        route: dict[str, Any],
        store_result: bool,
    ) -> None:
        app = self.app
        with (
            app.producer_or_acquire() as producer,
            producer.connection._reraise_as_library_errors(),
        ):
            if store_result and self._call_hook:
                app.backend.on_task_call(producer, task_id)
            queue = route.get("queue")
            if isinstance(queue, Queue) and _declared(producer, queue):
                route["declare"] = []  # kombu would copy and re-check it on every call
            app.amqp.send_task_message(producer, name, message, **route)

    def _waits_on_broker(self, message: Any) -> bool:
        """A delayed message (an outbox row with an `eta`, say) where the broker delays it:
        Celery's path sends it through the delay queues (`DelayingAMQP`)."""
        return self._delays_on_broker and bool(message.headers.get("eta"))

    @property
    def _delays_on_broker(self) -> bool:
        """Delayed messages go through the broker's delay topology (`hexa._delays`), which
        Celery's own path sends to (`DelayingAMQP`)."""
        settings = getattr(self.app, "hexa_settings", None)
        return bool(settings is not None and settings.delays_on_broker)

    def _send_task(
        self,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: SendOptions,
        default_queue: str | None,
        store_result: bool,
    ) -> TaskResult[Any]:
        """Celery's own `send_task`, for what the fast path leaves to it."""
        celery_options = options.for_celery()
        if default_queue and "queue" not in celery_options:
            celery_options["queue"] = default_queue
        celery_options["task_id"] = str(uuid_module.uuid4())  # the same id on every attempt
        celery_options["ignore_result"] = not store_result
        sent = send_confirmed(self.app, name, list(args), dict(kwargs), celery_options)
        return TaskResult(sent, self.app, task_name=name, stored=store_result)

    def _expiration(self, expires: float | datetime) -> float:
        """Seconds until `expires` as the broker's message TTL (0 when already past)."""
        if isinstance(expires, datetime):
            now = self.app.now()
            seconds = (maybe_make_aware(expires) - now).total_seconds()
        else:
            seconds = float(expires)
        return max(seconds, 0.0)


_KOMBU_JSON = kombu_json.JSONEncoder()  # json.dumps(cls=...) makes one per call


def _json_body(body: Any) -> bytes:
    """The body as kombu's "json" serializer writes it (one encoder kept for every call,
    unless another "json" serializer was registered)."""
    registry = getattr(kombu_serialization, "registry", None)
    codec = getattr(registry, "_encoders", {}).get("json")
    if codec is not None and codec[2] is kombu_json.dumps:
        return _KOMBU_JSON.encode(body).encode()
    payload = dumps(body, serializer="json")[2]
    return payload.encode() if isinstance(payload, str) else payload


def _inherits_priority(request: Any, inherit: bool) -> bool:
    """Whether a message sent from this task takes its priority (Celery's setting)."""
    return inherit and (request.delivery_info or {}).get("priority") is not None


def _publish_on(channel: ConfirmChannel, sent: Outgoing | Framed) -> Ticket:
    if isinstance(sent, Framed):
        return channel.publish_frames(sent)
    return channel.publish(sent.message, sent.exchange, sent.routing_key, sent.declare)


def _declared(producer: Any, queue: Queue) -> bool:
    """True once kombu declared `queue` on this connection (its own cache, by hash)."""
    return hash(queue) in producer.connection.declared_entities


_publishers: weakref.WeakKeyDictionary[Celery, Publisher] = weakref.WeakKeyDictionary()
_publishers_lock = threading.Lock()


def publisher(app: Celery) -> Publisher:
    """The app's `Publisher`, made on first use."""
    found = _publishers.get(app)
    if found is None:
        with _publishers_lock:
            found = _publishers.get(app)
            if found is None:
                found = _publishers[app] = Publisher(app)
    return found


def publish(
    name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    options: SendOptions,
    default_queue: str | None = None,
    app: Celery | None = None,
    store_result: bool = True,
) -> TaskResult[Any]:
    """Publish a checked call as a plain Celery message any Celery worker accepts."""
    found = publisher(app or current_app())
    check_size(name, args, kwargs, max_message_size(found.app))  # before the outbox too
    settings = getattr(found.app, "hexa_settings", None)
    if settings is not None and (options.countdown or options.eta):
        check_delay(name, options.countdown, options.eta, settings)
    outbox = active_outbox()  # inside `with outbox(session)`: a row of that transaction
    if outbox is not None:
        return outbox.store(found, name, args, kwargs, options, default_queue, store_result)
    return found.publish(name, args, kwargs, options, default_queue, store_result)


def broker_list(app: Celery) -> list[str]:
    """The app's brokers, one URL each (a cluster's nodes, or the one broker)."""
    return split_urls(str(app.conf.broker_url or "")) or [""]


def _heartbeat(app: Celery) -> int:
    settings = getattr(app, "hexa_settings", None)
    return int(getattr(settings, "heartbeat", 0))


def _publish_timeout(app: Celery) -> float:
    settings = getattr(app, "hexa_settings", None)
    return float(getattr(settings, "publish_timeout", DEFAULT_PUBLISH_TIMEOUT))


def until_confirmed(app: Celery, name: str, attempt: Callable[[float], T]) -> T:
    """`attempt(confirm_timeout)` until it returns: the one retry-until-confirmed loop.

    A broker error (down, restarting, blocking publishers, a nack, no confirm in time) is
    retried after a pause with the same message, until `Settings.publish_timeout`; then
    `PublishError` names the task and the broker (password masked).
    """
    timeout = _publish_timeout(app)
    deadline = time.monotonic() + timeout
    while True:
        confirm = max(0.5, min(CONFIRM_TIMEOUT, deadline - time.monotonic()))
        try:
            return attempt(confirm)
        except BROKER_ERRORS as error:
            mismatch = queue_mismatch(error)  # a queue of another type: no retry mends that
            if mismatch is not None:
                raise mismatch from None
            if time.monotonic() + _PAUSE >= deadline:
                raise _publish_error(app, name, timeout, error) from None
        time.sleep(_PAUSE)


def send_confirmed(
    app: Celery, name: str, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]
) -> AsyncResult[Any]:
    """`app.send_task`, retried until the broker confirms, or `PublishError` at the deadline."""

    def attempt(confirm: float) -> AsyncResult[Any]:
        return app.send_task(
            name,
            args=args,
            kwargs=kwargs,
            confirm_timeout=confirm,
            retry_policy=_NO_KOMBU_RETRY,
            **options,
        )

    return until_confirmed(app, name, attempt)


def _publish_error(app: Celery, name: str, timeout: float, error: BaseException) -> PublishError:
    broker = mask(app.conf.broker_url or "")
    return PublishError(
        f"{name}: the broker at {broker} did not confirm the message within {timeout:g}s "
        f"({type(error).__name__}: {error}); it may not have been queued. Check that RabbitMQ "
        "is up and not blocking publishers (disk or memory alarm), then send it again"
    )


def _batch_error(
    app: Celery, unconfirmed: list[tuple[Outgoing | Framed, Ticket]], timeout: float
) -> PublishError:
    broker = mask(app.conf.broker_url or "")
    errors = {f"{type(t.error).__name__}: {t.error}" for _, t in unconfirmed if t.error}
    shown = ", ".join(f"{s.name} {s.task_id}" for s, _ in unconfirmed[:10])
    more = f" and {len(unconfirmed) - 10} more" if len(unconfirmed) > 10 else ""
    return PublishError(
        f"hexa.batch(): the broker at {broker} did not confirm {len(unconfirmed)} message(s) "
        f"within {timeout:g}s ({'; '.join(sorted(errors)) or 'no answer'}): {shown}{more}; "
        "they may not have been queued. Check that RabbitMQ is up and not blocking "
        "publishers (disk or memory alarm), then send those again"
    )
