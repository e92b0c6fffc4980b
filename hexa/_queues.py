"""Queue types: every queue hexa declares is declared alike, classic or quorum.

`HEXA_QUEUE_TYPE=quorum` makes the task queues (Celery declares them, from
`task_default_queue_type` / `task_create_missing_queue_type`) and their `.dead` queues (hexa
declares them) RabbitMQ quorum queues. RabbitMQ refuses to redeclare a queue with other
arguments (`PRECONDITION_FAILED - inequivalent arg`) and a queue's type can never change in
place: `queue_mismatch` turns that refusal into an error naming the queue, its type on the
broker and the fix, instead of a worker that dies with the broker's text or a publish retried
until its timeout.
"""

from __future__ import annotations

import re
from typing import Any

from kombu import Queue

from hexa._exceptions import ConfigurationError
from hexa._settings import QUEUE_TYPE_ENV, Settings


def queue_arguments(settings: Settings) -> dict[str, Any] | None:
    """The `x-` arguments of a task or dead-letter queue of this installation."""
    return {"x-queue-type": "quorum"} if settings.queue_type == "quorum" else None


def plain_queue(name: str, settings: Settings) -> Queue:
    """A durable queue on the default exchange (hexa's `.dead` queues), of the chosen type."""
    return Queue(name, routing_key=name, queue_arguments=queue_arguments(settings))


def celery_queue_options(settings: Settings) -> dict[str, Any]:
    """Celery settings declaring the task queues as `settings.queue_type` says."""
    return {
        "task_default_queue_type": settings.queue_type,
        "task_create_missing_queue_type": settings.queue_type,
        # Quorum queues have no global QoS: Celery then sets the prefetch per consumer.
        "worker_detect_quorum_queues": True,
    }


_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for queue '(?P<queue>[^']*)'.*?"
    r"received (?:the value )?(?P<received>'[^']*'|none).*?current is (?:the value )?"
    r"(?P<current>'[^']*'|none)",
    re.DOTALL,
)


def _type_named(value: str) -> str:
    """RabbitMQ's 'quorum' / none (an undeclared x-queue-type is a classic queue)."""
    return "classic" if value == "none" else value.strip("'")


def queue_mismatch(error: BaseException) -> ConfigurationError | None:
    """The clear error for a queue RabbitMQ refused to redeclare; None for any other error."""
    found = _INEQUIVALENT.search(str(error))
    if found is None:
        return None
    queue, arg = found["queue"], found["arg"]
    if arg != "x-queue-type":
        return ConfigurationError(
            f"queue {queue!r} exists on the broker with another {arg} than this process "
            f"declares ({found['current']} there, {found['received']} here); RabbitMQ cannot "
            f"change a queue's arguments: delete the queue once it is drained, or use "
            f"another queue name"
        )
    existing, wanted = _type_named(found["current"]), _type_named(found["received"])
    return ConfigurationError(
        f"queue {queue!r} exists on the broker as a {existing} queue, and this process "
        f"declares it as a {wanted} queue ({QUEUE_TYPE_ENV}={wanted}); RabbitMQ cannot "
        f"change a queue's type. Either set {QUEUE_TYPE_ENV}={existing} to keep using it, or "
        f"move to {wanted} queues: stop its workers, let it drain, delete it "
        f"(rabbitmqctl delete_queue {queue}) and start them again, or use a new queue name "
        f"(HEXA_DEFAULT_QUEUE)"
    )
