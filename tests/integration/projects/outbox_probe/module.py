"""A task the outbox tests send from their transactions: it counts each run of an index."""

from __future__ import annotations

import os

import redis

from hexa import Module, module_task

_client: redis.Redis | None = None


def _records() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["OUTBOX_RECORD_URL"])
    return _client


@module_task(module="outbox_probe")
def record(key: str, index: int) -> int:
    """Count one run of `index` under `key` (a Redis hash): lost and duplicated runs show."""
    _records().hincrby(key, str(index), 1)
    return index


class OutboxProbeModule(Module):
    pass
