"""One client per system: how a user of each sends a task and reads its result.

Every client answers the same three questions: `send(kind, count, args)` publishes `count`
tasks the way that library's user would and returns the Redis keys their results land on;
`roundtrip()` sends one task and waits for its result with the library's own API; and
`close()`. `kind` is `noop`, `noop_none` (fire and forget) or `io_wait` (await `args[0]` s).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal
from celery import Celery
from kombu import Connection, Exchange, Queue

import hexa
from benchmarks import bench_tasks

RESULT_PREFIX = "celery-task-meta-"
Keys = list[str]


def vhost_url(url: str) -> str:
    """kombu writes the default vhost as `host//`; pika and aio-pika want `host/%2F`."""
    return url[:-1] + "%2F" if url.endswith("//") else url


class CeleryClient:
    """Raw Celery's `send_task` (with its defaults, or with hexa's settings)."""

    def __init__(self, app: Celery, queue: str) -> None:
        self.app, self.queue = app, queue

    def send(self, kind: str, count: int, args: Sequence[Any] = ()) -> Keys:
        name, none = f"bench.{kind}", kind == "noop_none"
        options: dict[str, Any] = {"queue": self.queue, "args": list(args)}
        if none:
            options["ignore_result"] = True
        return [RESULT_PREFIX + str(self.app.send_task(name, **options).id) for _ in range(count)]

    def roundtrip(self) -> None:
        self.app.send_task("bench.noop", queue=self.queue).get(timeout=30)

    def close(self) -> None:
        self.app.close()


class HexaClient:
    """hexa's typed `.send()`; `batch=True` sends inside `hexa.batch()` when it exists."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.tasks = {
            name: getattr(bench_tasks, name).with_options(queue=queue)
            for name in ("noop", "noop_none", "io_wait")
        }

    def send(self, kind: str, count: int, args: Sequence[Any] = ()) -> Keys:
        task = self.tasks[kind]
        return [RESULT_PREFIX + task.send(*args).id for _ in range(count)]

    def send_batch(self, kind: str, count: int, args: Sequence[Any] = ()) -> Keys:
        """The same loop inside one `hexa.batch()`: confirmed together at the block's end."""
        batch = getattr(hexa, "batch", None)
        if batch is None:
            raise NotAvailable("hexa.batch() does not exist in this version")
        with batch():
            return self.send(kind, count, args)

    def roundtrip(self) -> None:
        self.tasks["noop"].send().get(timeout=30)

    def close(self) -> None:
        pass


class NotAvailable(Exception):
    """A capability this checkout does not have yet: its rows say so instead of failing."""


class DramatiqClient:
    """`actor.send()` on Dramatiq's RabbitMQ broker; results from its Redis backend."""

    def __init__(self, queue: str, broker_url: str, backend_url: str) -> None:
        from benchmarks.dramapp import build

        self.broker, self.backend, self.actors = build(queue, vhost_url(broker_url), backend_url)

    def send(self, kind: str, count: int, args: Sequence[Any] = ()) -> Keys:
        actor, key = self.actors[kind], self.backend.build_message_key
        return [key(actor.send(*args)) for _ in range(count)]

    def roundtrip(self) -> None:
        message = self.actors["noop"].send()
        message.get_result(backend=self.backend, block=True, timeout=30_000)

    def close(self) -> None:
        self.broker.close()


class TaskiqClient:
    """`await task.kiq()` on taskiq-aio-pika, from an event loop of its own (a portal)."""

    def __init__(self, queue: str, broker_url: str, backend_url: str) -> None:
        from benchmarks.taskiqapp import build

        self.broker, self.tasks = build(queue, vhost_url(broker_url), backend_url)
        self._context: AbstractContextManager[BlockingPortal] = start_blocking_portal()
        self.portal = self._context.__enter__()
        self.portal.call(self.broker.startup)

    async def _send(self, kind: str, count: int, args: Sequence[Any], gather: int) -> Keys:
        import asyncio

        task, keys = self.tasks[kind], []
        for start in range(0, count, gather):
            sent = await asyncio.gather(
                *(task.kiq(*args) for _ in range(min(gather, count - start)))
            )
            keys += [s.task_id for s in sent]
        return keys

    def send(self, kind: str, count: int, args: Sequence[Any] = ()) -> Keys:
        keys: Keys = self.portal.call(self._send, kind, count, args, 1)
        return keys

    def send_concurrently(self, kind: str, count: int, args: Sequence[Any] = ()) -> Keys:
        """Up to 100 `kiq()` awaited at once: how async code publishes a lot quickly."""
        keys: Keys = self.portal.call(self._send, kind, count, args, 100)
        return keys

    async def _roundtrip(self) -> None:
        sent = await self.tasks["noop"].kiq()
        await sent.wait_result(timeout=30)

    def roundtrip(self) -> None:
        self.portal.call(self._roundtrip)

    def close(self) -> None:
        self.portal.call(self.broker.shutdown)
        self._context.__exit__(None, None, None)


class KombuFloor:
    """A bare kombu producer with publisher confirms: a persistent, Celery-shaped message.

    What one confirmed publish costs at best, one at a time: no task layer at all.
    """

    def __init__(self, broker_url: str, queue: str) -> None:
        self.conn = Connection(broker_url, transport_options={"confirm_publish": True})
        self.queue = Queue(queue, Exchange(queue, "direct"), routing_key=queue)
        self.producer = self.conn.Producer(serializer="json")
        self.producer.declare()
        self.queue(self.producer.channel).declare()
        self._lock = threading.Lock()

    def headers(self, task_id: str) -> dict[str, Any]:
        return {
            "lang": "py",
            "task": "bench.noop",
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": "()",
            "kwargsrepr": "{}",
            "origin": "gen@bench",
            "ignore_result": False,
        }

    def send(self, kind: str, count: int, args: Sequence[Any] = ()) -> Keys:
        keys = []
        for _ in range(count):
            task_id = str(uuid.uuid4())
            body = [list(args), {}, {"callbacks": None, "errbacks": None, "chain": None}]
            self.producer.publish(
                body,
                exchange=self.queue.exchange.name,
                routing_key=self.queue.routing_key,
                headers=self.headers(task_id),
                correlation_id=task_id,
                delivery_mode=2,
            )
            keys.append(RESULT_PREFIX + task_id)
        return keys

    def roundtrip(self) -> None:
        raise NotAvailable("the floor has no worker")

    def close(self) -> None:
        self.conn.close()


Client = CeleryClient | HexaClient | DramatiqClient | TaskiqClient | KombuFloor
Sender = Callable[[str, int, Sequence[Any]], Keys]
