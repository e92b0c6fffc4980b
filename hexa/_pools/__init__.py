"""hexa's own worker execution pools, registered with Celery by name: `--pool asyncio`.

Celery picks a pool by an alias in `celery.concurrency.ALIASES` (`prefork`, `threads`,
`solo`...). `register()` adds hexa's; the pool modules themselves (and `greenlet`) are
imported only by a worker that uses them.
"""

from __future__ import annotations

from typing import Any, cast

from celery import concurrency

#: `--pool NAME` -> the class Celery instantiates (read by Celery's own `-P` option too).
POOLS = {"asyncio": "hexa._pools.asyncio:TaskPool"}


def register() -> None:
    """Make `--pool asyncio` resolve (before Celery's command line is built)."""
    cast(Any, concurrency).ALIASES.update(POOLS)  # celery-types does not declare ALIASES


register()
