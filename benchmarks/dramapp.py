"""The Dramatiq side of the benchmark, with Dramatiq's defaults (RabbitMQ broker, Redis results).

Copied into the generated project and run with `dramatiq dramapp --queues Q`; the client
builds its own broker with `build(queue)` (one per queue, so actors of several runs never
share a name on one broker). The only additions to Dramatiq's defaults are what the workload
needs: the Results middleware (every result is read) and, for async actors, the AsyncIO one.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware.asyncio import AsyncIO
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend


def noop() -> int:
    return 1


def noop_none() -> None:
    return None


async def io_wait(seconds: float) -> int:
    await asyncio.sleep(seconds)
    return 1


def build(queue: str, broker_url: str, backend_url: str) -> tuple[Any, Any, dict[str, Any]]:
    """(broker, result backend, actors by name) for one queue."""
    broker = RabbitmqBroker(url=broker_url)
    backend = RedisBackend(url=backend_url)
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(AsyncIO())
    actors = {
        "noop": dramatiq.actor(noop, queue_name=queue, broker=broker, store_results=True),
        "noop_none": dramatiq.actor(noop_none, queue_name=queue, broker=broker),
        "io_wait": dramatiq.actor(io_wait, queue_name=queue, broker=broker, store_results=True),
    }
    return broker, backend, actors


if os.environ.get("BENCH_QUEUE"):  # the worker side: `dramatiq dramapp`
    broker, backend, actors = build(
        os.environ["BENCH_QUEUE"], os.environ["RABBITMQ_URL"], os.environ["REDIS_URL"]
    )
    dramatiq.set_broker(broker)
