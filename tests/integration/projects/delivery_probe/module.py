"""Tasks for delivery tests: each run is recorded in Redis under a key the test gives."""

from __future__ import annotations

import os
import time

import redis

from hexa import FixedDelay, Module, module_task


class Flaky(Exception):
    """The error `retried_later` retries on."""


def _record(key: str, value: str) -> int:
    with redis.Redis.from_url(os.environ["REDIS_URL"]) as client:
        client.rpush(key, value)
        client.expire(key, 600)
        return int(client.llen(key))


@module_task
def ran_at(key: str) -> float:
    """Records when it ran (epoch seconds)."""
    now = time.time()
    _record(key, repr(now))
    return now


@module_task
def neighbour(key: str, index: int) -> int:
    _record(key, str(index))
    return index


@module_task
def kills_its_process(key: str) -> bool:
    """Records the run, then ends its worker process as a segfault or the OOM killer would."""
    _record(key, "ran")
    os._exit(1)


@module_task(retry=FixedDelay(delay=3600, max_retries=1, on=(Flaky,)))
def retried_in_an_hour(key: str) -> str:
    """Fails once, retried an hour later: the retry must wait on the broker."""
    if _record(key, "attempt") == 1:
        raise Flaky("first attempt")
    return "second attempt"


class DeliveryProbeModule(Module):
    pass
