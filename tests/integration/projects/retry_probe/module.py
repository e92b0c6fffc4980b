"""Tasks that fail on purpose; every attempt is counted in Redis under a key the test gives."""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from hexa import Backoff, FixedDelay, Module, module_task


class Flaky(Exception):
    """The error the policies below list in `on=`."""


def record(key: str) -> int:
    """Count this attempt and note when it started; returns the attempt number (from 1)."""
    with redis.Redis.from_url(os.environ["REDIS_URL"]) as client:
        client.rpush(f"{key}:times", repr(time.time()))
        client.expire(f"{key}:times", 300)
        return int(client.llen(f"{key}:times"))


@module_task(retry=Backoff(max_retries=3, base=1, max=60, jitter=False, on=(Flaky,)))
def flaky(key: str, failures: int) -> str:
    attempt = record(key)
    if attempt <= failures:
        raise Flaky(f"failure {attempt}")
    return f"ok after {attempt}"


@module_task(retry=FixedDelay(delay=1, max_retries=2, on=(Flaky,)))
def always_failing(key: str) -> None:
    raise Flaky(f"failure {record(key)}")


@module_task(retry=Backoff(max_retries=3, base=1, jitter=False, on=(Flaky,)))
def unlisted(key: str) -> None:
    raise LookupError(f"not listed, attempt {record(key)}")


@module_task(bind=True, retry=FixedDelay(delay=0, max_retries=2, on=(Flaky,)))
def bound(task: Any, key: str) -> int:
    record(key)
    if task.request.retries < 1:
        raise Flaky("once")
    return int(task.request.retries)


class RetryProbeModule(Module):
    pass
