"""Checked by mypy only (`make lint`): `hexa.testing`'s helpers keep the task's types."""

from __future__ import annotations

from typing import assert_type

from hexa import module_task
from hexa.testing import EagerRun, EventLog, capture_logs, run_eagerly


@module_task(module="typing_testing")
def add(a: int, b: int = 0) -> int:
    return a + b


@module_task(module="typing_testing")
async def fetch(url: str) -> bytes:
    return url.encode()


assert_type(run_eagerly(add, 1, 2), EagerRun[int])
assert_type(run_eagerly(add, 1).get(), int)
assert_type(run_eagerly(fetch, "x"), EagerRun[bytes])  # the awaited type, not a coroutine

with capture_logs() as logs:
    assert_type(logs, EventLog)

run_eagerly(add, "x")  # type: ignore[arg-type]
run_eagerly(fetch)  # type: ignore[call-arg]
