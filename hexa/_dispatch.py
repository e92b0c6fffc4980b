"""Publishing: the one place a message leaves the process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery

from hexa._app import current_app
from hexa._options import SendOptions
from hexa._result import TaskResult


def publish(
    name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    options: SendOptions,
    default_queue: str | None = None,
    app: Celery | None = None,
) -> TaskResult[Any]:
    """Publish a checked call as a plain Celery message any Celery worker accepts."""
    celery_options = options.for_celery()
    if default_queue and "queue" not in celery_options:
        celery_options["queue"] = default_queue
    app = app or current_app()
    async_result = app.send_task(name, args=list(args), kwargs=dict(kwargs), **celery_options)
    return TaskResult(async_result)
