"""Tasks for `--pool asyncio`: where each ran, when, and what its log context held."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import anyio
import redis.asyncio
import structlog

from hexa import FixedDelay, Module, module_task

log = structlog.get_logger("aiopool_probe")


class Flaky(Exception):
    """The error the retry policies below list in `on=`."""


def _redis() -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(os.environ["REDIS_URL"])


async def attempt(key: str) -> int:
    """Count this attempt in Redis; returns its number (from 1)."""
    async with _redis() as client:
        number = int(await client.incr(key))
        await client.expire(key, 300)
        return number


@module_task
async def nap(seconds: float) -> dict[str, float | int]:
    started = time.time()
    log.info("probe.started")
    await anyio.sleep(seconds)
    return {"pid": os.getpid(), "started": started, "ended": time.time()}


_arrived: dict[str, int] = {}
_everyone: dict[str, asyncio.Event] = {}


@module_task
async def gather(batch: str, size: int, seconds: float) -> dict[str, float | int]:
    """Wait until `size` tasks of `batch` are in flight in this process, then await `seconds`.

    No pool that runs fewer than `size` at once can finish a single one of them.
    """
    everyone = _everyone.setdefault(batch, asyncio.Event())
    _arrived[batch] = _arrived.get(batch, 0) + 1
    if _arrived[batch] >= size:
        everyone.set()
    await asyncio.wait_for(everyone.wait(), timeout=120)
    return await nap(seconds)


@module_task
async def where() -> dict[str, object]:
    return {"thread": threading.get_ident(), "name": threading.current_thread().name}


@module_task
def where_sync(seconds: float) -> dict[str, object]:
    time.sleep(seconds)
    running_loop = asyncio._get_running_loop() is not None
    return {
        "thread": threading.get_ident(),
        "name": threading.current_thread().name,
        "loop": running_loop,
    }


@module_task(timeout=0.5)
async def overrun(seconds: float) -> str:
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        log.info("probe.cancelled")
        raise
    return "finished"


@module_task
async def tagged(n: int) -> int:
    """Logs twice around awaits that interleave with the other tasks in flight."""
    log.info("probe.tagged", n=n)
    await anyio.sleep(0.2 + (n % 7) / 100)
    log.info("probe.tagged", n=n)
    return n


@module_task(retry=FixedDelay(delay=0, max_retries=2, on=(Flaky,)))
async def flaky(key: str, failures: int) -> str:
    number = await attempt(key)
    if number <= failures:
        raise Flaky(f"failure {number}")
    return f"ok after {number}"


@module_task(retry=FixedDelay(delay=0, max_retries=1, on=(Flaky,)))
async def hopeless(key: str) -> None:
    raise Flaky(f"failure {await attempt(key)}")


@module_task
async def slow_first_time(key: str, seconds: float) -> int:
    """The first delivery sleeps `seconds` (to be cancelled); a redelivery returns at once."""
    number = await attempt(key)
    log.info("probe.started")
    try:
        if number == 1:
            await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        log.info("probe.cancelled")
        raise
    return number


class AiopoolProbeModule(Module):
    pass
