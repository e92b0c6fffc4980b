"""Tasks the workflow tests chain, group and chord on a real worker."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import structlog

from hexa import FixedDelay, module_task

#: Given, not inferred: the tests import this file from tests/, the worker from modules/.
MODULE = "workflow_probe"
#: While the file this names exists, `fragile` fails (the fault a replay fixes by removing it).
BROKEN_ENV = "WORKFLOW_PROBE_BROKEN"


@module_task(module=MODULE)
def add(x: int, y: int) -> int:
    return x + y


@module_task(module=MODULE)
def double(x: int) -> int:
    return 2 * x


@module_task(module=MODULE)
def label(x: int, prefix: str = "n=") -> str:
    return f"{prefix}{x}"


@module_task(module=MODULE)
async def total(values: list[int]) -> int:
    """A chord callback, async: it receives the header's results as one list."""
    await anyio.sleep(0)
    return sum(values)


@module_task(module=MODULE)
def describe(values: list[int | str]) -> str:
    """What a chord callback receives at run time: its type and its items."""
    return f"{type(values).__name__}:{values!r}"


@module_task(module=MODULE)
def count(values: Sequence[object]) -> int:
    return len(values)


@module_task(module=MODULE, retry=FixedDelay(delay=0, max_retries=1, on=(ValueError,)))
def fragile(x: int) -> int:
    """Fails (after one retry) while the file named by WORKFLOW_PROBE_BROKEN exists."""
    marker = os.environ.get(BROKEN_ENV)
    if marker and Path(marker).exists():
        raise ValueError(f"fragile cannot handle {x} while {marker} exists")
    return x + 1000


@module_task(module=MODULE)
def slow_square(x: int, seconds: float = 0.0) -> int:
    """Logs `probe.started` (with its task id) first, so a test sees what was in flight."""
    structlog.get_logger().info("probe.started", x=x)
    time.sleep(seconds)
    return x * x


@module_task(module=MODULE)
def note(x: int) -> None:
    """Ends a workflow with nothing to wait for."""
    print(f"noted {x}")


def shout(text: str) -> str:
    """Hand-written, registered the seed's way in module.py (no decorator)."""
    return text.upper() + "!"
