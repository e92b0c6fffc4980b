"""A Celery task message as the AMQP message RabbitMQ receives: what `send_task_message` does.

Celery's `amqp.send_task_message` works out the exchange, routing key and delivery mode from
the route, fires `before_task_publish`, serializes the body and hands it to kombu's producer.
The pipelined publisher (`hexa._confirms`) writes the message itself, so this module does the
same steps, in the same order, with the same signal arguments: any Celery worker receives the
same message, and code listening to `before_task_publish` (tracing, for one) still sees it and
may still add headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import amqp
import attrs
from celery import Celery, signals
from kombu import Queue
from kombu.common import Broadcast
from kombu.serialization import dumps

#: Route keys this module knows how to send; any other sends through Celery's own path.
ROUTE_KEYS = frozenset({"queue", "exchange", "routing_key", "priority", "expiration"})
_DELIVERY_MODES = {"transient": 1, "persistent": 2}


@attrs.frozen
class Outgoing:
    """One task message, ready to write: the AMQP message and where it goes."""

    name: str
    task_id: str
    message: amqp.Message
    exchange: str
    routing_key: str
    declare: Queue | None
    body: Any
    headers: dict[str, Any]


def writable(route: Mapping[str, Any]) -> bool:
    """Whether `outgoing` can send this route (else Celery's `send_task_message` does)."""
    return route.keys() <= ROUTE_KEYS and isinstance(route.get("queue"), Queue | None)


@attrs.frozen
class Wire:
    """What an app's configuration says about every message, read once (not per message)."""

    app: Celery
    serializer: str
    delivery_mode: Any
    retry_policy: Mapping[str, Any]

    @classmethod
    def of(cls, app: Celery) -> Wire:
        conf = app.conf
        return cls(
            app, conf.task_serializer, conf.task_default_delivery_mode,
            dict(conf.task_publish_retry_policy or {}),
        )  # fmt: skip

    def outgoing(self, name: str, task_message: Any, route: Mapping[str, Any]) -> Outgoing:
        """Celery's task message (`create_task_message`) as an AMQP message, signals fired."""
        headers, properties, body, _ = task_message
        queue = route.get("queue") or self.app.amqp.default_queue
        exchange, routing_key = destination(self.app, queue, route)
        for option in ("priority", "expiration"):
            if route.get(option) is not None:
                properties[option] = route[option]
        declare = None if isinstance(queue, Broadcast) else queue
        if signals.before_task_publish.receivers:
            signals.before_task_publish.send(
                sender=name, body=body, exchange=exchange, routing_key=routing_key,
                declare=[declare] if declare else [], headers=headers, properties=properties,
                retry_policy=dict(self.retry_policy),
            )  # fmt: skip
        message = self._amqp_message(queue, body, headers, properties)
        return Outgoing(name, headers["id"], message, exchange, routing_key, declare, body, headers)

    def mode_of(self, queue: Queue) -> Any:
        """The AMQP delivery mode (2: persistent) of messages sent to `queue`."""
        mode = getattr(queue.exchange, "delivery_mode", None) or self.delivery_mode
        return _DELIVERY_MODES.get(mode, mode)

    def _amqp_message(
        self, queue: Queue, body: Any, headers: dict[str, Any], properties: dict[str, Any]
    ) -> amqp.Message:
        content_type, encoding, payload = dumps(body, serializer=self.serializer)
        extra = {k: v for k, v in properties.items() if k not in ("priority", "expiration")}
        extra["delivery_mode"] = self.mode_of(queue)
        if properties.get("expiration") is not None:  # seconds, as kombu's producer takes them
            extra["expiration"] = str(int(float(properties["expiration"]) * 1000))
        return amqp.Message(
            payload,
            priority=properties.get("priority"),
            content_type=content_type,
            content_encoding=encoding,
            application_headers=headers,
            **extra,
        )


def destination(app: Celery, queue: Queue, route: Mapping[str, Any]) -> tuple[str, str]:
    """Exchange and routing key as Celery picks them (the default exchange for direct)."""
    exchange, routing_key = route.get("exchange"), route.get("routing_key")
    exchange_type = getattr(queue.exchange, "type", None) or "direct"
    if (not exchange or not routing_key) and exchange_type == "direct":
        return "", queue.name
    name = getattr(exchange, "name", exchange) or queue.exchange.name or app.amqp.default_exchange
    rkey = routing_key or queue.routing_key or app.conf.task_default_routing_key
    return str(getattr(name, "name", name)), str(rkey)


def after_publish(sent: Outgoing) -> None:
    """`after_task_publish`, as Celery fires it once the message is out."""
    if signals.after_task_publish.receivers:
        signals.after_task_publish.send(
            sender=sent.name, body=sent.body, headers=sent.headers,
            exchange=sent.exchange, routing_key=sent.routing_key,
        )  # fmt: skip
