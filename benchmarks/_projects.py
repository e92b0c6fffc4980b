"""Generated projects: the worker side of every scenario, written into a temporary folder."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCH_MODULE = textwrap.dedent(
    '''
    """The benchmark's hexa module: its tasks live in `tasks.py` (shared with the client)."""

    from hexa import Module
    from modules.bench import tasks  # noqa: F401  (declares the tasks)


    class BenchModule(Module):
        pass
    '''
)


def bench_project(root: Path) -> Path:
    """`modules/bench` for `hexa worker`, and the raw Celery, Dramatiq and taskiq apps."""
    package = root / "modules" / "bench"
    package.mkdir(parents=True)
    (root / "modules" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "module.py").write_text(BENCH_MODULE)
    shutil.copy(HERE / "bench_tasks.py", package / "tasks.py")
    for app in ("rawapp.py", "dramapp.py", "taskiqapp.py"):
        shutil.copy(HERE / app, root / app)
    return root


def _hexa_module(index: int, tasks: int) -> str:
    lines = ["from hexa import Module, module_task", ""]
    for task in range(tasks):
        lines += ["", "@module_task", f"def t{task:02d}(x: int) -> int:", "    return x", ""]
    lines += ["", f"class M{index:03d}Module(Module):", "    pass", ""]
    return "\n".join(lines)


def _raw_module(index: int, tasks: int) -> str:
    lines = ["from rawbig import app", ""]
    for task in range(tasks):
        name = f"m{index:03d}.t{task:02d}"
        lines += ["", f"@app.task(name={name!r})", f"def t{task:02d}(x):", "    return x", ""]
    return "\n".join(lines)


RAW_BIG_APP = textwrap.dedent(
    '''
    """Raw Celery with the same tasks as the hexa project: one module per hexa module."""

    from celery import Celery

    from hexa import Settings
    from hexa._app import APP_NAME, celery_config

    settings = Settings.from_env()
    app = Celery(
        APP_NAME,
        broker=settings.broker_url,
        backend=settings.result_backend,
        include=[f"rawbig_tasks.m{{i:03d}}" for i in range({modules})],
    )
    config = celery_config(settings)
    config.pop("worker_consumer", None)  # hexa's dead-letter consumer is part of hexa's cost
    app.conf.update(config)
    '''
)


def big_projects(root: Path, modules: int, tasks: int) -> tuple[Path, Path]:
    """`modules` x `tasks` no-op tasks, once for hexa and once for raw Celery."""
    hexa_root, raw_root = root / "big-hexa", root / "big-raw"
    (hexa_root / "modules").mkdir(parents=True)
    (hexa_root / "modules" / "__init__.py").write_text("")
    (raw_root / "rawbig_tasks").mkdir(parents=True)
    (raw_root / "rawbig_tasks" / "__init__.py").write_text("")
    (raw_root / "rawbig.py").write_text(RAW_BIG_APP.format(modules=modules))
    for index in range(modules):
        package = hexa_root / "modules" / f"m{index:03d}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "module.py").write_text(_hexa_module(index, tasks))
        (raw_root / "rawbig_tasks" / f"m{index:03d}.py").write_text(_raw_module(index, tasks))
    return hexa_root, raw_root
