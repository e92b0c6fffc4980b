"""Checked by mypy only (`make lint`): calling an async task in-process keeps its types."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, assert_type

from hexa import module_task


@module_task(module="typing_demo", timeout=5)
async def fetch(url: str, retries: int = 0) -> bytes:
    return url.encode()


async def from_a_running_loop() -> None:
    coroutine = fetch("x")  # calling it returns the coroutine, as the function would
    checked = assert_type(coroutine, Coroutine[Any, Any, bytes])
    assert_type(await checked, bytes)


assert_type(fetch.run_sync("x", retries=2), bytes)

fetch.run_sync(1)  # type: ignore[arg-type]
fetch.run_sync()  # type: ignore[call-arg]
