"""Import the repository's `modules` and `examples` afresh, and forget them afterwards.

Their `@module_task` declarations land in the process-wide registry. Imported at collection
time they would stay there for the whole session and clash with tests that build their own
`modules` package (a second `invoicing.emit_invoice`), so tests import them inside this.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hexa import registry

_PACKAGES = ("modules", "examples")


def _ours(name: str) -> bool:
    return name in _PACKAGES or name.startswith(tuple(p + "." for p in _PACKAGES))


def _forget() -> None:
    for name in [n for n in sys.modules if _ours(n)]:
        del sys.modules[name]


@contextmanager
def fresh_repo_modules() -> Iterator[None]:
    """Inside: a first import of `modules.*`/`examples.*`. After: modules and tasks as before."""
    saved = {n: m for n, m in sys.modules.items() if _ours(n)}
    tasks = list(registry)
    _forget()
    try:
        yield
    finally:
        _forget()
        sys.modules.update(saved)
        registry.clear()
        for task in tasks:
            registry.add(task)
