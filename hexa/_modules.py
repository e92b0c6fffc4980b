"""Modules and discovery: `modules/<name>/module.py` into the service locator."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import attrs

from hexa._definitions import (
    TaskDefinition,
    definitions,
    is_task_service,
    near_misses,
    task_services,
)
from hexa._exceptions import DiscoveryError, DuplicateTaskError, ModuleImportError
from hexa._locator import ServiceLocator, service_locator
from hexa._registry import registry
from hexa._tasks_service import TasksService

TASKS_SERVICE = "tasks_service"


class Module:
    """Base of every `modules/<name>/module.py` module class.

    `service` returns the module's services dict; by default the tasks that
    `@module_task` registered for this module, in the seed's `"<name>_tasks"` format.
    Override it to add other services (and merge `super().service`).
    """

    @property
    def name(self) -> str:
        """`modules.invoicing.module` -> `invoicing`."""
        parts = type(self).__module__.split(".")
        return parts[parts.index("modules") + 1] if "modules" in parts[:-1] else parts[-1]

    @property
    def service(self) -> dict[str, object]:
        return dict(registry.services(module=self.name))


class ModuleRegistry:
    """The module instances discovery created; shared by every `ModuleRegistry()`."""

    _modules: ClassVar[dict[str, Module]] = {}

    def register(self, module: Module) -> None:
        self._modules[module.name] = module

    def get(self, name: str) -> Module:
        return self._modules[name]

    def clear(self) -> None:
        self._modules.clear()

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __len__(self) -> int:
        return len(self._modules)

    def __repr__(self) -> str:
        return f"<ModuleRegistry modules={sorted(self._modules)}>"


@attrs.frozen
class DiscoveryReport:
    """What discovery found, and what it passed over and why."""

    modules: dict[str, str]  # module name -> path of its module.py
    services: dict[str, str]  # tasks service name -> module that registered it
    skipped: list[str]
    near_misses: list[str]
    tasks: list[TaskDefinition] = attrs.field(factory=list)  # every task, in discovery order


def _import(dotted: str, path: Path) -> ModuleType:
    try:
        return importlib.import_module(dotted)
    except Exception as error:
        # Never log-and-skip: a module that does not import must stop the worker.
        raise ModuleImportError(str(path), error) from error


def _module_classes(module: ModuleType) -> list[type[Module]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Module) and obj.__module__ == module.__name__
    ]


def _register(
    locator: ServiceLocator, services: dict[str, Any], owner: str, owners: dict[str, str]
) -> None:
    """Put a module's services into the locator; two modules may not claim one task."""
    for name, value in services.items():
        if is_task_service(value, name) and owners.get(name, owner) != owner:
            clash = set(locator.get_service(name)) & set(value)
            if clash:
                raise DuplicateTaskError(
                    f"task(s) {sorted(clash)} of service {name!r} are registered by module "
                    f"{owners[name]!r} and by module {owner!r}; rename one of them"
                )
            value = {**locator.get_service(name), **value}
        owners.setdefault(name, owner)
        locator.register(name, value)


def _package(package: str) -> ModuleType:
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as error:
        if error.name != package:
            raise ModuleImportError(package, error) from error
        raise DiscoveryError(
            f"no {package!r} package importable from {Path.cwd()}; run hexa from your "
            f"project's root, the folder that holds {package}/<name>/module.py"
        ) from None


def register_tasks_service(locator: ServiceLocator) -> list[TaskDefinition]:
    """Read the locator's `*_tasks` services and register a `tasks_service` that knows them."""
    found = definitions(locator.services())
    locator.register(TASKS_SERVICE, TasksService(found))
    return found


def discover_modules(
    package: str = "modules",
    filename: str = "module.py",
    locator: ServiceLocator = service_locator,
) -> DiscoveryReport:
    """Import `<package>/<name>/<filename>` for every module and register its services.

    Afterwards the locator also holds a `tasks_service` that knows every discovered task.
    """
    root = _package(package)
    found: dict[str, str] = {}
    owners: dict[str, str] = {}
    skipped: list[str] = []
    for folder in sorted(p for base in root.__path__ for p in Path(base).iterdir() if p.is_dir()):
        path = folder / filename
        if folder.name.startswith(("_", ".")):
            continue
        if not path.is_file():
            skipped.append(f"{folder.name}: no {filename}")
            continue
        imported = _import(f"{package}.{folder.name}.{path.stem}", path)
        classes = _module_classes(imported)
        if not classes:
            skipped.append(f"{folder.name}: {filename} defines no hexa.Module subclass")
        for cls in classes:
            instance = cls()
            ModuleRegistry().register(instance)
            found[instance.name] = str(path)
            _register(locator, instance.service, instance.name, owners)
    tasks = register_tasks_service(locator)
    services = locator.services()
    return DiscoveryReport(
        modules=found,
        services={name: owners.get(name, "?") for name in task_services(services)},
        skipped=skipped,
        near_misses=near_misses(services),
        tasks=tasks,
    )
