"""The Redis result backend, tolerant of Redis being down when a task is sent.

Celery subscribes to a task's result channel *before* publishing the task; with Redis down
that subscription raises and the task is never sent, although the worker could run it.
Here a failed subscription is logged and the task is published anyway: `get()` subscribes
again and reads the stored result, or raises `ResultBackendError` while Redis stays away.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend

from hexa._exceptions import error_text
from hexa._logging import get_logger

log = get_logger()


class TolerantRedisBackend(RedisBackend):
    """`RedisBackend` whose send-time result subscription never blocks a publish."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        try:
            super().on_task_call(producer, task_id)
        except Exception as error:
            log.warning(
                "result.subscribe_failed",
                id=task_id,
                backend=self.as_uri(),
                error=error_text(error),
            )
