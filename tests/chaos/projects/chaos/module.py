"""Tasks the fault scenarios run: each records its index, so losses and duplicates show."""

from __future__ import annotations

import os
import time

import redis

from hexa import Module

#: The Redis the tasks record into (not the result backend: that one may be down on purpose).
RECORD_ENV = "CHAOS_RECORD_URL"
_client: redis.Redis | None = None


def _records() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ[RECORD_ENV])
    return _client


#: Set on the cluster suite's worker hosts: `record` also counts runs per host.
HOST_ENV = "CHAOS_HOST"


def record(key: str, index: int, seconds: float = 0.02) -> int:
    """Work for `seconds`, then count one run of `index` under `key` (a hash), and one run
    on this host under `key:hosts` when the worker runs on a cluster suite's host."""
    time.sleep(seconds)
    host = os.environ.get(HOST_ENV)
    if host:
        pipe = _records().pipeline()
        pipe.hincrby(key, str(index), 1)
        pipe.hincrby(f"{key}:hosts", host, 1)
        pipe.execute()
    else:
        _records().hincrby(key, str(index), 1)
    return index


def record_due(key: str, index: int, due: float) -> int:
    """Count one run of `index` under `key`, and how late it ran (ms after `due`, a Unix
    time) under `key:late`: countdown tasks run on time, or the lateness shows."""
    late = int((time.time() - due) * 1000)
    pipe = _records().pipeline()
    pipe.hincrby(key, str(index), 1)
    pipe.hset(f"{key}:late", str(index), late)
    pipe.execute()
    return index


def poison(key: str) -> None:
    """Kills its own process on every delivery (as a segfault or the OOM killer would)."""
    _records().hincrby(f"{key}:poison", "runs", 1)
    os._exit(1)


def echo(value: object) -> object:
    return value


def broken(value: object) -> object:
    raise ValueError(f"cannot handle {value!r}")


def leaky(value: object) -> object:
    """Raises with both URLs, passwords included, in its message (a common mistake)."""
    urls = os.environ.get("RABBITMQ_URL"), os.environ.get("REDIS_URL")
    raise ConnectionError(f"cannot reach {urls[0]} nor {urls[1]} for {value!r}")


class ChaosModule(Module):
    @property
    def service(self) -> dict[str, object]:
        return {
            "chaos_tasks": {
                "record": record,
                "record_due": record_due,
                "poison": poison,
                "echo": echo,
                "leaky": {
                    "task": leaky,
                    "config": {
                        "autoretry_for": (ConnectionError,),
                        "max_retries": 1,
                        "default_retry_delay": 0,
                    },
                },
                "broken": {
                    "task": broken,
                    "config": {
                        "autoretry_for": (ValueError,),
                        "max_retries": 1,
                        "default_retry_delay": 0,
                    },
                },
            },
        }
