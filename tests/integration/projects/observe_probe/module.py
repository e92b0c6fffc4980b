"""Tasks for the metrics tests: ones that succeed, fail after one retry, hold, and report."""

from __future__ import annotations

import sys
import time

import anyio

from hexa import FixedDelay, Module, module_task


class Flaky(Exception):
    """The error `fails` raises; its policy retries it once."""


@module_task
def ok(n: int) -> int:
    return n


@module_task
async def ok_async(n: int) -> int:
    await anyio.sleep(0)
    return n


@module_task(retry=FixedDelay(delay=0, max_retries=1, on=(Flaky,)))
def fails(n: int) -> None:
    raise Flaky(f"task {n} fails on purpose")


@module_task
def hold(seconds: float) -> None:
    time.sleep(seconds)


#: What the import tests look for in a worker process.
WATCHED = ("hexa._metrics", "hexa.tracing", "opentelemetry", "prometheus_client")


@module_task
def loaded_modules() -> list[str]:
    """Which of `WATCHED` this pool process has imported."""
    return [name for name in WATCHED if name in sys.modules]


class ObserveProbeModule(Module):
    pass
