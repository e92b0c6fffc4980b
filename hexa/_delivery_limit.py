"""Delivery limit: a message whose worker process dies on it is dead-lettered, not run forever.

With acks late, a message whose task kills its process (`os._exit`, a segfaulting extension,
the OOM killer) is requeued and delivered again, forever, starving its neighbours. Each
delivery that ended without an ack is counted, and at `HEXA_DELIVERY_LIMIT` the message goes
to the dead-letter queue ("delivered N times without finishing") with a FAILURE stored for
its id, before the task would run again.

Counting: a quorum queue counts for us (RabbitMQ's `x-delivery-count` header). A classic
queue only flags a message `redelivered`; so a redelivered message is published again at the
tail of its queue with the count in the `hexa-deliveries` header, and the original is acked
once the broker confirmed the copy. It costs one publish per redelivery, nothing on the
normal path, and the copy goes behind the neighbours instead of in front of them. A crash
between the copy and the ack gives one duplicate delivery, never a loss (at-least-once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kombu.message import Message

from hexa._delays import queue_of
from hexa._queues import plain_queue
from hexa._settings import DELIVERY_LIMIT_ENV, Settings

#: The count a classic queue's copy carries: deliveries that ended without finishing.
COUNT_HEADER = "hexa-deliveries"
#: A quorum queue's own count of deliveries returned to it (RabbitMQ 3.8+).
QUORUM_COUNT_HEADER = "x-delivery-count"
#: Dropped when a dead letter is replayed: a replay starts counting afresh.
DELIVERY_COUNT_HEADERS = frozenset({COUNT_HEADER, QUORUM_COUNT_HEADER})
#: Properties a copy keeps; `expiration` is left out (the `expires` header still holds).
_KEPT = ("correlation_id", "reply_to", "priority", "delivery_mode")
_PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def _count(value: Any) -> int:
    """A header's count, 0 when absent or not a whole number (a hostile header, say)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def failed_deliveries(message: Message) -> int:
    """How many earlier deliveries of `message` ended without an ack."""
    headers = message.headers if isinstance(message.headers, Mapping) else {}
    redelivered = bool((message.delivery_info or {}).get("redelivered"))
    counted = _count(headers.get(COUNT_HEADER)) + int(redelivered)
    return max(_count(headers.get(QUORUM_COUNT_HEADER)), counted)


def limit_reason(failed: int, settings: Settings) -> str:
    return (
        f"delivered {failed} times without finishing ({DELIVERY_LIMIT_ENV}="
        f"{settings.delivery_limit}): its worker process died, or lost the broker, each time"
    )


def needs_counting(message: Message, settings: Settings) -> bool:
    """A redelivered message on a classic queue: its count must travel in a new copy."""
    return settings.queue_type == "classic" and bool(
        (message.delivery_info or {}).get("redelivered")
    )


def requeue_counted(message: Message, failed: int, producer: Any, settings: Settings) -> None:
    """Publish `message` again at its queue's tail, `failed` in its header (confirmed)."""
    headers = dict(message.headers) if isinstance(message.headers, Mapping) else {}
    properties = message.properties or {}
    queue = queue_of(str((message.delivery_info or {}).get("routing_key") or ""))
    queue = queue or settings.default_queue
    producer.publish(
        message.body,
        exchange="",
        routing_key=queue,
        declare=[plain_queue(queue, settings)],
        content_type=message.content_type or "application/data",
        content_encoding=message.content_encoding or "binary",
        headers={**headers, COUNT_HEADER: failed},
        retry=True,
        retry_policy=_PUBLISH_RETRY,
        **{key: properties[key] for key in _KEPT if properties.get(key) is not None},
    )
