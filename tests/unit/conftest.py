"""Unit-test fixtures: a clean registry, locator and `modules` package per test."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hexa import ModuleRegistry, registry, service_locator


@pytest.fixture(autouse=True)
def clean_registries() -> Iterator[None]:
    """Each test starts from empty registries and leaves them as they were."""
    tasks = list(registry)
    services = service_locator.services()
    registry.clear()
    service_locator.clear()
    yield
    registry.clear()
    for task in tasks:
        registry.add(task)
    service_locator.clear()
    for name, service in services.items():
        service_locator.register(name, service)
    ModuleRegistry().clear()


def _forget_modules_package() -> None:
    for name in [n for n in sys.modules if n == "modules" or n.startswith("modules.")]:
        del sys.modules[name]


@pytest.fixture
def make_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[dict[str, str]], Path]]:
    """Write `{relative path: source}` under a tmp project whose `modules` package wins imports."""

    def make(files: dict[str, str]) -> Path:
        for relative, source in files.items():
            path = tmp_path / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source, encoding="utf-8")
        return tmp_path

    saved = {n: m for n, m in sys.modules.items() if n == "modules" or n.startswith("modules.")}
    _forget_modules_package()
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield make
    _forget_modules_package()
    sys.modules.update(saved)


def record_publishes(monkeypatch: pytest.MonkeyPatch, target: str) -> list[Any]:
    """Replace the `publish` imported at `target` with a recorder of its calls.

    Each call is recorded as `(name, args, kwargs, options, queue)`, args as the caller passed
    them; nothing reaches a broker.
    """
    calls: list[Any] = []

    def publish(
        name: str, args: Any, kwargs: Any, options: Any, queue: Any, store_result: bool = True
    ) -> str:
        calls.append((name, args, dict(kwargs), options, queue))
        return "result"

    monkeypatch.setattr(target, publish)
    return calls
