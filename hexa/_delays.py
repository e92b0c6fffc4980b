"""Delays of any length: on RabbitMQ a delayed message waits on the broker, never in a worker.

Celery sends a `countdown`/`eta` message straight to its queue; a worker takes it at once and
holds it unacknowledged until it is due. Past RabbitMQ's `consumer_timeout` (30 minutes by
default) the broker closes that worker's channel (celery issue 6760). So on RabbitMQ hexa
routes every delayed message (`.send`, `with_options`, `send_task`, `hexa send --countdown`,
retries, workflows) through the broker's delay topology instead: kombu's native delayed
delivery, 28 queues `celery_delayed_N` whose messages expire after 2**N seconds and are
dead-lettered to the next level, the routing key's bits (the delay in seconds, in binary)
choosing the levels a message waits in; the last level dead-letters into the exchange
`celery_delayed_delivery`, where each task queue is bound by its own name. The message
reaches its queue when it is due (at most a second early: the worker holds it for that
second) and carries its ordinary `eta` header, so any Celery worker runs it.

The delay queues are quorum queues whatever `HEXA_QUEUE_TYPE` says: their dead-lettering is
at-least-once (a classic queue's is at-most-once: a node crash mid-hop could lose a message)
and they are declared exactly as Celery's own workers declare them, so both share them.
Delays up to 2**28 - 1 seconds (8.5 years) work. Unlike Celery's own native delayed delivery
(quorum queues on topic exchanges only), this works for classic and quorum task queues on
Celery's usual direct exchanges: each queue is bound to the delivery exchange directly.

Where the broker has no such topology (the embedded broker, any other transport) a worker
holds a delayed message, so delays above `MAX_HELD_DELAY` are refused before publishing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from celery import bootsteps
from celery.app.amqp import AMQP
from kombu import Queue
from kombu.common import Broadcast
from kombu.transport import native_delayed_delivery as native
from kombu.utils.objects import cached_property

from hexa._exceptions import DispatchError
from hexa._settings import Settings

#: RabbitMQ closes a channel whose message stays unacknowledged for 30 minutes (its default
#: `consumer_timeout`). Where a worker holds delayed messages (no delay topology), delays
#: are kept a minute below that.
MAX_HELD_DELAY = 30 * 60 - 60
#: The longest delay the topology expresses: 28 levels of 2**N seconds.
MAX_DELAY = 2**native.MAX_NUMBER_OF_BITS_TO_USE - 1
#: Shorter delays are left to the worker (the topology counts whole seconds).
MIN_BROKER_DELAY = 1
TOP_LEVEL = native.level_name(native.MAX_LEVEL)
DELIVERY_EXCHANGE = native.CELERY_DELAYED_DELIVERY_EXCHANGE
#: The delay queues' type: quorum, for at-least-once dead-lettering between the levels.
DELAY_QUEUE_TYPE = "quorum"
_TOPOLOGY_DECLARED = "hexa:delay-topology"
#: The delay in binary, one word per bit, in front of a delayed message's routing key.
_DELAY_BITS = re.compile(rf"^(?:[01]\.){{{native.MAX_NUMBER_OF_BITS_TO_USE}}}")


def queue_of(routing_key: str) -> str:
    """The task queue a routing key leads to: without the delay bits, if it has them."""
    return _DELAY_BITS.sub("", routing_key, count=1)


def delivery_binding(queue_name: str) -> str:
    """The binding key of a queue on the delivery exchange: exactly 28 bits, then its name."""
    return "*." * native.MAX_NUMBER_OF_BITS_TO_USE + queue_name


def _when(eta: Any) -> datetime | None:
    if isinstance(eta, str):
        try:
            eta = datetime.fromisoformat(eta)
        except ValueError:
            return None
    if not isinstance(eta, datetime):
        return None
    return eta if eta.tzinfo else eta.replace(tzinfo=UTC)  # Celery reads naive as UTC


def seconds_until(eta: Any, now: datetime) -> float | None:
    """Seconds from `now` to a message's `eta` header; None when it has none."""
    when = _when(eta)
    return None if when is None else (when - now).total_seconds()


def requested_delay(countdown: float | None, eta: datetime | None, now: datetime) -> float:
    """The delay a call asks for, in seconds (0 when none)."""
    if countdown is not None:
        return float(countdown)
    return seconds_until(eta, now) or 0.0


def check_delay(
    name: str, countdown: float | None, eta: datetime | None, settings: Settings
) -> None:
    """Refuse, before publishing, a delay this broker cannot keep."""
    delay = requested_delay(countdown, eta, datetime.now(UTC))
    given = f"countdown={countdown:g}s" if countdown is not None else f"eta={eta} ({delay:.0f}s)"
    if settings.delays_on_broker:
        if delay > MAX_DELAY:
            raise DispatchError(
                f"{name}: {given} is longer than RabbitMQ's delay topology can wait "
                f"({MAX_DELAY}s, 8.5 years); use a periodic task for work that far ahead"
            )
        return
    if delay > MAX_HELD_DELAY:
        raise DispatchError(held_delay_refusal(f"{name}: {given}"))


def held_delay_refusal(what: str) -> str:
    """Why a delay longer than `MAX_HELD_DELAY` is refused where a worker would hold it."""
    return (
        f"{what} is longer than {MAX_HELD_DELAY}s: on this broker a delayed message is held "
        "unacknowledged by a worker until it is due, and RabbitMQ drops a worker's channel "
        "when a message waits unacked 30 minutes (its consumer_timeout). Delays of any length "
        "wait on the broker with RABBITMQ_URL=amqp://...; here keep delays "
        f"<= {MAX_HELD_DELAY}s, or use a periodic task for work that should run much later"
    )


class _OnChannel:
    """kombu's declaring function wants a connection; this one gives it our channel."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel

    def channel(self) -> Any:
        return self._channel


def declare_topology(channel: Any, queues: list[Queue], declared: set[Any]) -> None:
    """The delay levels and delivery exchange, then each queue and its delivery binding.

    `declared` (kombu's per-connection set) remembers what this connection declared.
    """
    if _TOPOLOGY_DECLARED not in declared:
        native.declare_native_delayed_delivery_exchanges_and_queues(
            cast(Any, _OnChannel(channel)), DELAY_QUEUE_TYPE
        )
        declared.add(_TOPOLOGY_DECLARED)
    for queue in queues:
        key = f"{_TOPOLOGY_DECLARED}:{queue.name}"
        if key not in declared:
            queue.bind(channel).declare()
            channel.queue_bind(queue.name, DELIVERY_EXCHANGE, delivery_binding(queue.name))
            declared.add(key)


def _target(amqp: AMQP, options: Mapping[str, Any]) -> Queue | None:
    """The task queue a message is for, whatever route Celery worked out."""
    routing_key, queue = str(options.get("routing_key") or ""), options.get("queue")
    if isinstance(queue, Broadcast):
        return None
    if routing_key and queue_of(routing_key) != routing_key:  # a retry of a delayed message
        name = queue_of(routing_key)
    elif isinstance(queue, Queue):
        return queue
    else:
        name = queue if isinstance(queue, str) and queue else routing_key
    found: Queue = amqp.queues[name or amqp.app.conf.task_default_queue]
    return found


def on_broker(amqp: AMQP, producer: Any, message: Any, options: dict[str, Any]) -> dict[str, Any]:
    """`options` routed through the delay topology when the message is due later."""
    target = _target(amqp, options)
    if target is None:
        return options
    delay = seconds_until(message[0].get("eta"), amqp.app.now())
    if delay is None or delay < MIN_BROKER_DELAY:
        if queue_of(str(options.get("routing_key") or "")) != options.get("routing_key"):
            return {**options, "queue": target, "exchange": "", "routing_key": target.name}
        return options
    connection = producer.connection
    declare_topology(producer.channel, [target], connection.declared_entities)
    routed = {key: value for key, value in options.items() if key != "expiration"}
    return {
        **routed,
        # the message's TTL would let it out of a delay queue early; its `expires`
        # header still makes the worker drop it when it arrives too late
        "exchange": TOP_LEVEL,
        "routing_key": native.calculate_routing_key(min(int(delay), MAX_DELAY), target.name),
        "exchange_type": "topic",
        "queue": None,
        "declare": [],
    }


class DelayingAMQP(AMQP):
    """Celery's AMQP helper, whose `send_task_message` routes delayed messages to the broker."""

    @cached_property
    def send_task_message(self) -> Any:
        send = cast(Any, self)._create_task_sender()
        settings: Settings | None = getattr(self.app, "hexa_settings", None)
        if settings is None or not settings.delays_on_broker:
            return send

        def send_task_message(producer: Any, name: str, message: Any, **options: Any) -> Any:
            return send(producer, name, message, **on_broker(self, producer, message, options))

        return send_task_message


class _NativeDelayWarning(logging.Filter):
    """Celery warns that delayed messages to direct exchanges 'may block the worker' when
    it sees quorum queues: not so here, hexa routes them (`DelayingAMQP`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Direct exchanges are not supported")


_filter = _NativeDelayWarning()


def quiet_celery_warning() -> None:
    logger = logging.getLogger("celery.app.base")
    if _filter not in logger.filters:
        logger.addFilter(_filter)


class DelayTopology(bootsteps.StartStopStep):
    """Worker start: the delay topology declared and every consumed queue bound to it.

    In place of Celery's `DelayedDelivery` step (quorum queues on topic exchanges only).
    A queue that exists with another type fails here with the fix (`hexa._queues`).
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def include_if(self, c: Any) -> bool:
        settings: Settings | None = getattr(c.app, "hexa_settings", None)
        return bool(settings and settings.delays_on_broker)

    def start(self, c: Any) -> None:
        consumed = c.app.amqp.queues.consume_from.values()
        queues = [queue for queue in consumed if not isinstance(queue, Broadcast)]
        channel = c.connection.channel()
        try:
            declare_topology(channel, queues, set())
        finally:
            channel.close()
