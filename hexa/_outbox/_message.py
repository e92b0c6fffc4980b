"""An outbox row is the publisher's own message, made at the send and published by the relay.

Both halves use `Publisher`'s message and delivery code, so a message that went through the
outbox is the one a direct `.send()` would have published: same task id, headers, body,
queue and priority. Only the broker TTL of `expires=` is worked out again at publish time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from celery.app.amqp import task_message
from kombu.utils.uuid import uuid

from hexa._observe import inject_trace_context
from hexa._options import SendOptions
from hexa._outbox._table import utcnow
from hexa._publisher import Publisher
from hexa._result import TaskResult


def stored_row(
    publisher: Publisher,
    name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    options: SendOptions,
    default_queue: str | None,
    store_result: bool,
) -> tuple[dict[str, Any], TaskResult[Any]]:
    """The `hexa_outbox` row for one checked send, and the `TaskResult` it will run as."""
    task_id = uuid()
    parent = publisher.app.current_worker_task  # a task sending from inside a worker
    route = publisher._delivery(name, args, kwargs, options, default_queue, parent)
    message = publisher._message(task_id, name, args, kwargs, options, parent, store_result)
    inject_trace_context(message.headers)  # the worker continues the sender's trace
    row = {
        "task_id": task_id,
        "task_name": name,
        "queue": _queue_name(publisher, route),
        "priority": route.get("priority"),
        "message": {
            "headers": message.headers,
            "properties": message.properties,
            "body": list(message.body),
            "sent_event": message.sent_event,
        },
        "created_at": utcnow(),
    }
    result: TaskResult[Any] = TaskResult(
        task_id, publisher.app, task_name=name, stored=store_result
    )
    if parent is not None:
        parent.add_trail(result.celery_result)
    return row, result


def _queue_name(publisher: Publisher, route: Mapping[str, Any]) -> str:
    """The queue routing chose, by name: the relay resolves it again on its own app."""
    queue = route.get("queue")
    return str(getattr(queue, "name", queue) or publisher.app.conf.task_default_queue)


def publish_row(publisher: Publisher, row: Any) -> None:
    """Publish a stored message and wait for the broker's confirm (`PublishError` if none)."""
    stored = row.message
    headers = stored["headers"]
    args, kwargs, embed = stored["body"]
    expires = headers.get("expires")
    options = SendOptions(
        queue=row.queue,
        priority=row.priority,
        expires=datetime.fromisoformat(expires) if expires else None,
    )
    route = publisher._delivery(row.task_name, args, kwargs, options, None, None)
    message = task_message(
        headers, stored["properties"], (args, kwargs, embed), stored["sent_event"]
    )
    store_result = not headers.get("ignore_result", False)
    publisher._send_confirmed(row.task_name, row.task_id, message, route, store_result)
