"""The hexa tasks of the benchmark: copied into the worker project, imported by the client.

`module="bench"` is explicit so the client (which imports this file as `benchmarks.bench_tasks`)
and the worker (which imports it as `modules.bench.tasks`) name the tasks alike.
"""

from __future__ import annotations

import anyio

from hexa import module_task


@module_task(module="bench")
def noop() -> int:
    return 1


@module_task(module="bench")
def noop_none() -> None:
    return None


@module_task(module="bench")
async def io_sleep() -> int:
    await anyio.sleep(0.05)
    return 1


@module_task(module="bench")
async def io_wait(seconds: float) -> int:
    await anyio.sleep(seconds)
    return 1


@module_task(module="bench")
async def light(x: int) -> int:
    return x + 1
