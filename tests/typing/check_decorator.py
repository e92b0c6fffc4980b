"""Checked by mypy only (`make lint`): each `assert_type` and each ignore is a claim."""

from __future__ import annotations

from typing import assert_type

from hexa import Backoff, TaskResult, module_task


@module_task(module="typing_demo")
def add(a: int, b: int = 0) -> int:
    return a + b


@module_task(module="typing_demo", retry=Backoff(max_retries=2))
async def fetch(url: str) -> bytes:
    return url.encode()


assert_type(add.send(1, 2), TaskResult[int])
assert_type(fetch.send("x"), TaskResult[bytes])
assert_type(add.send(1).get(timeout=1), int)
assert_type(add.with_options(countdown=5).send(1), TaskResult[int])

add.send("x")  # type: ignore[arg-type]
fetch.send()  # type: ignore[call-arg]
add.with_options(retries=3)  # type: ignore[arg-type]
