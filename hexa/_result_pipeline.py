"""Results stored from the event loop: pipelined, and never a blocking round trip on the loop.

On the asyncio pool each trace runs on the loop's thread (`hexa._pools._greenlets`); a sync
Redis call there would stop every coroutine for a round trip. Instead the trace hands its write
to this store and is suspended until it is done. Writes that arrive while one batch is on the
wire go out together in the next: one pipelined round trip for many results, where the threads
pool spends one per result. Each write is the same atomic script as the sync store
(`hexa._result_store._STORE_SCRIPT`: a final state is never replaced by a late RETRY), and a
Redis that is away is retried with the backend's own retry policy, then reported as the sync
store reports it (the connection error reaches `store_result`, which logs `result.not_stored`).
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Mapping
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: What one batch may hold; more waits for the next round trip.
MAX_BATCH = 1000
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_ASYNC_PARAMETERS = frozenset(inspect.signature(redis.asyncio.Redis.__init__).parameters) - {"self"}
_Write = tuple[bytes, "str | bytes", str, int, "asyncio.Future[Any]"]


def async_client_options(connparams: Mapping[str, Any]) -> dict[str, Any] | None:
    """Celery's Redis connection parameters for `redis.asyncio.Redis`, or None when they
    name something only the sync client does here (TLS or a Unix socket, say)."""
    options = dict(connparams)
    options.pop("retry_on_timeout", None)  # deprecated there: timeouts are retried anyway
    if options.pop("connection_class", redis.Connection) is not redis.Connection:
        return None
    if set(options) - _ASYNC_PARAMETERS:
        return None
    return options


class PipelinedStore:
    """Result writes of one loop to one Redis, each batch one pipelined round trip."""

    def __init__(
        self, options: Mapping[str, Any], script: Any, sha: str, policy: Mapping[str, Any]
    ):
        self._client = redis.asyncio.Redis(**options)
        self._script, self._sha = script, sha
        self._retries = int(policy.get("max_retries") or 0)
        self._interval = float(policy.get("interval_start") or 0)
        self._step = float(policy.get("interval_step") or 0)
        self._interval_max = float(policy.get("interval_max") or 1)
        self._pending: list[_Write] = []
        self._sending: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        await self._client.aclose()

    def store(
        self, key: bytes, value: str | bytes, state: str, expires: int
    ) -> asyncio.Future[Any]:
        """Queue one write (on the loop's thread); the future is done once it is stored."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._pending.append((key, value, state, expires, done))
        if self._sending is None:
            self._sending = loop.create_task(self._send_pending())
        return done

    async def _send_pending(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._send(batch)
        finally:
            self._sending = None

    async def _send(self, batch: list[_Write]) -> None:
        """One batch, retried as a whole while Redis is unreachable (the backend's policy)."""
        interval = self._interval
        for attempt in range(self._retries + 1):
            try:
                replies = await self._pipeline(batch)
            except _UNREACHABLE as error:
                if attempt == self._retries:
                    for *_, done in batch:
                        if not done.done():
                            done.set_exception(error)
                    return
                await asyncio.sleep(interval)
                interval = min(interval + self._step, self._interval_max)
                continue
            except Exception as error:  # a bug or a refused script: each write says so
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(error)
                return
            for (*_, done), reply in zip(batch, replies, strict=True):
                if done.done():
                    continue
                if isinstance(reply, Exception):
                    done.set_exception(reply)
                else:
                    done.set_result(reply)
            return

    async def _pipeline(self, batch: list[_Write]) -> list[Any]:
        replies = await self._evalsha(batch)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:  # a new or flushed Redis: load the script once, send those again
            await self._client.script_load(self._script)
            again = await self._evalsha([batch[i] for i in missing])
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    async def _evalsha(self, batch: list[_Write]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for key, value, state, expires, _ in batch:
                pipe.evalsha(self._sha, 1, key, value, state, expires)
            return list(await pipe.execute(raise_on_error=False))


_stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, PipelinedStore]] = (
    weakref.WeakKeyDictionary()
)


def pipelined_store(backend: Any, script: Any, sha: str) -> PipelinedStore | None:
    """The running loop's store for `backend`'s Redis, or None when the async client
    cannot reach it the same way (then the caller writes from a worker thread)."""
    loop = asyncio.get_running_loop()
    known: tuple[asyncio.AbstractEventLoop, PipelinedStore | None] | None = getattr(
        backend, "_hexa_pipelined", None
    )
    if known is not None and known[0] is loop:
        return known[1]
    found = None
    options = async_client_options(backend.connparams)
    if options is not None:  # once per backend and loop: one store per Redis
        per_loop = _stores.setdefault(loop, {})
        key = tuple(sorted((k, repr(v)) for k, v in options.items()))
        found = per_loop.get(key)
        if found is None:
            found = per_loop[key] = PipelinedStore(options, script, sha, backend.retry_policy)
    backend._hexa_pipelined = (loop, found)
    return found
