"""The taskiq side of the benchmark, with taskiq's defaults: taskiq-aio-pika + taskiq-redis.

Copied into the generated project and run with `taskiq worker taskiqapp:broker`; the client
builds its own broker with `build(queue)`. Only the names change (exchange, queue and dead
letter queue named after the run's queue, so runs never share them); everything else is
taskiq's default (quorum queue, ack when the result is saved, 2 worker processes).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from taskiq_aio_pika import AioPikaBroker
from taskiq_aio_pika.exchange import Exchange
from taskiq_aio_pika.queue import Queue
from taskiq_redis import RedisAsyncResultBackend


def noop() -> int:
    return 1


def noop_none() -> None:
    return None


async def io_wait(seconds: float) -> int:
    await asyncio.sleep(seconds)
    return 1


def build(
    queue: str, broker_url: str, backend_url: str, qos: int = 10
) -> tuple[Any, dict[str, Any]]:
    """(broker with its result backend, tasks by name) for one queue.

    `qos` is taskiq-aio-pika's prefetch (10 by default): with more tasks in flight
    (`--max-async-tasks N`) the worker raises it to N, or N would never be reached.
    """
    broker: Any = AioPikaBroker(
        url=broker_url,
        qos=qos,
        exchange=Exchange(name=queue),
        task_queues=[Queue(name=queue)],
        dead_letter_queue=Queue(name=f"{queue}.dead_letter"),
    ).with_result_backend(RedisAsyncResultBackend(redis_url=backend_url))
    tasks = {
        name: broker.register_task(func, task_name=name)
        for name, func in (("noop", noop), ("noop_none", noop_none), ("io_wait", io_wait))
    }
    return broker, tasks


if os.environ.get("BENCH_QUEUE"):  # the worker side: `taskiq worker taskiqapp:broker`
    broker, tasks = build(
        os.environ["BENCH_QUEUE"],
        os.environ["RABBITMQ_URL"],
        os.environ["REDIS_URL"],
        int(os.environ.get("BENCH_PREFETCH") or 10),
    )
