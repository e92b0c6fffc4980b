"""A task Beat sends every second; each run is counted in Redis under `HEXA_PROBE_KEY`."""

from __future__ import annotations

import os
from datetime import timedelta

import redis

from hexa import Module, module_task


@module_task(schedule=timedelta(seconds=1))
def tick() -> int:
    key = os.environ["HEXA_PROBE_KEY"]
    with redis.Redis.from_url(os.environ["REDIS_URL"]) as client:
        count = int(client.incr(key))
        client.expire(key, 300)
        return count


class BeatProbeModule(Module):
    pass
