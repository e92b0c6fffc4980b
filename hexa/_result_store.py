"""The Redis result backend, never in the way of a publish.

Celery's `send_task` subscribes to a task's result channel *before* publishing the task; with
Redis down that subscription raises and the task is never sent, although the worker could
run it, and a client that sends without waiting piles up subscriptions. Here `send_task`
(Celery's canvas, used by workflows, included) does not subscribe at all, as hexa's own
publisher does not: `get()` subscribes when someone waits, then reads the stored result (a
result published before the subscription is not missed), or raises `ResultBackendError`
while Redis stays away.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend


class TolerantRedisBackend(RedisBackend):
    """`RedisBackend` that subscribes to a result when someone waits, not at publish."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Nothing to do at publish: `get()` subscribes on demand."""
