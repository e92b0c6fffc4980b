"""The raw-Celery twin of `bench_tasks`: `@app.task`, async functions wrapped the seed's way.

Copied into the generated project and run with `celery -A rawapp worker`. With
`BENCH_CELERY_DEFAULTS=1` it keeps Celery's own defaults; otherwise it takes hexa's settings
(acks late, prefetch 1, task events...) so the two sides differ only in hexa's layer.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from celery import Celery

from hexa import Settings
from hexa._app import APP_NAME, celery_config

settings = Settings.from_env()
app: Celery = Celery(APP_NAME, broker=settings.broker_url, backend=settings.result_backend)
if os.environ.get("BENCH_CELERY_DEFAULTS"):
    app.conf.task_default_queue = settings.default_queue
else:
    config = celery_config(settings)
    config.pop("worker_consumer", None)  # hexa's dead-letter consumer is part of hexa's cost
    if "--pool=threads" in sys.argv:  # as hexa does: events with confirms deadlock threads
        config["worker_send_task_events"] = False
    app.conf.update(config)


@app.task(name="bench.noop")
def noop() -> int:
    return 1


@app.task(name="bench.noop_none")
def noop_none() -> None:
    return None


async def _io_sleep() -> int:
    await anyio.sleep(0.05)
    return 1


async def _light(x: int) -> int:
    return x + 1


def seed_wrapper(func: Any) -> Any:
    """What the seed does with an `async def` task: a new event loop per call."""

    def run(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(func(*args, **kwargs))

    return run


app.task(name="bench.io_sleep")(seed_wrapper(_io_sleep))
app.task(name="bench.light")(seed_wrapper(_light))


@app.task(name="bench.sleep_sync")
def sleep_sync() -> int:
    """Celery's own ceiling for 50 ms of waiting on a threads pool: a blocking sleep."""
    time.sleep(0.05)
    return 1


_portal: list[BlockingPortal] = []
_portal_lock = threading.Lock()


def portal() -> BlockingPortal:
    """One event loop per process for every async task: what a careful Celery user writes."""
    with _portal_lock:
        if not _portal:
            _portal.append(start_blocking_portal().__enter__())
    return _portal[0]


async def _io_wait(seconds: float) -> int:
    await anyio.sleep(seconds)
    return 1


@app.task(name="bench.io_wait")
def io_wait(seconds: float) -> int:
    """`await anyio.sleep(seconds)` on the process's persistent loop (threads pool)."""
    return portal().call(_io_wait, seconds)
