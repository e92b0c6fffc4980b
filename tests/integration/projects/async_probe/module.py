"""Async tasks that report which process and which event loop ran them.

`ping` uses a real loop-bound client (one asyncio connection to Redis, opened on first use
and cached at module level, with a background task of its own): under `asyncio.run()` per
task, the second call would fail with "Event loop is closed".
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
import weakref
from urllib.parse import urlparse

import anyio
import structlog

from hexa import Module, module_task

log = structlog.get_logger("async_probe")

#: A token per event loop (ids of dead loops can be reused; tokens cannot).
_tokens: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, str] = weakref.WeakKeyDictionary()


def loop_token() -> str:
    return _tokens.setdefault(asyncio.get_running_loop(), uuid.uuid4().hex)


class RedisPing:
    """A minimal async Redis client: its streams belong to the loop that opened them."""

    created = 0

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.uses = 0
        self.lock = asyncio.Lock()
        # Pending for the life of the loop: a loop closed without cancelling it would log
        # "Task was destroyed but it is pending!".
        self.keepalive = asyncio.get_running_loop().create_task(self._keep_alive())
        RedisPing.created += 1

    @classmethod
    async def connect(cls) -> RedisPing:
        url = urlparse(os.environ["REDIS_URL"])
        reader, writer = await asyncio.open_connection(url.hostname, url.port or 6379)
        return cls(reader, writer)

    async def ping(self) -> str:
        async with self.lock:
            self.uses += 1
            self.writer.write(b"PING\r\n")
            await self.writer.drain()
            return (await self.reader.readline()).decode().strip()

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(3600)
            await self.ping()


_client: RedisPing | None = None
_connecting = asyncio.Lock()


async def client() -> RedisPing:
    global _client
    async with _connecting:
        if _client is None:
            _client = await RedisPing.connect()
    return _client


@module_task
async def ping() -> dict[str, object]:
    redis = await client()
    reply = await redis.ping()
    return {
        "pid": os.getpid(),
        "loop": loop_token(),
        "reply": reply,
        "created": RedisPing.created,
        "uses": redis.uses,
    }


@module_task
async def nap(seconds: float) -> dict[str, object]:
    await anyio.sleep(seconds)
    return {"pid": os.getpid(), "loop": loop_token()}


@module_task(timeout=0.5)
async def overrun(seconds: float) -> str:
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        log.info("probe.cancelled")
        raise
    return "finished"


@module_task(timeout=0.5)
async def block_loop(seconds: float) -> str:
    time.sleep(seconds)  # a sync call inside async code: no await, so no cancellation
    return "finished"


@module_task
async def add(a: int, b: int) -> int:
    log.info("probe.entered", a=a, b=b)
    return a + b


class AsyncProbeModule(Module):
    pass
