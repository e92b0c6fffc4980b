"""`python -m benchmarks._inprocess MODE`: one in-process timing in a fresh interpreter.

Prints `{"seconds": CPU seconds, "tasks": count}` as its last line. Modes: hexa-decorate,
raw-decorate (2000 functions), hexa-discover, raw-discover (the generated project in cwd).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

COUNT = 2000


def _functions() -> list[Callable[..., Any]]:
    def make(index: int) -> Callable[..., Any]:
        def func(x: int) -> int:
            return x

        func.__name__ = func.__qualname__ = f"t{index % 20:02d}"
        func.__module__ = f"modules.m{index // 20:03d}.module"
        return func

    return [make(i) for i in range(COUNT)]


def _raw_app() -> Any:
    from celery import Celery

    return Celery("hexa_worker", broker=os.environ["RABBITMQ_URL"], backend=os.environ["REDIS_URL"])


def hexa_decorate() -> tuple[float, int]:
    from hexa import module_task

    funcs = _functions()
    start = time.process_time()
    for func in funcs:
        module_task(func)
    return time.process_time() - start, len(funcs)


def raw_decorate() -> tuple[float, int]:
    app = _raw_app()
    funcs = _functions()
    start = time.process_time()
    for func in funcs:
        app.task(name=f"{func.__module__.split('.')[1]}.{func.__name__}")(func)
    app.finalize(auto=True)
    return time.process_time() - start, len(funcs)


def hexa_discover() -> tuple[float, int]:
    from hexa import create_celery_worker, discover_modules

    sys.path.insert(0, os.getcwd())
    start = time.process_time()
    report = discover_modules("modules", "module.py")
    create_celery_worker()
    return time.process_time() - start, len(report.tasks)


def raw_discover() -> tuple[float, int]:
    sys.path.insert(0, os.getcwd())
    start = time.process_time()
    import rawbig  # type: ignore[import-not-found]

    rawbig.app.loader.import_default_modules()
    rawbig.app.finalize(auto=True)
    seconds = time.process_time() - start
    return seconds, sum(1 for name in rawbig.app.tasks if not name.startswith("celery."))


MODES = {
    "hexa-decorate": hexa_decorate,
    "raw-decorate": raw_decorate,
    "hexa-discover": hexa_discover,
    "raw-discover": raw_discover,
}

if __name__ == "__main__":
    seconds, tasks = MODES[sys.argv[1]]()
    sys.stdout.flush()
    print(json.dumps({"seconds": seconds, "tasks": tasks}))
