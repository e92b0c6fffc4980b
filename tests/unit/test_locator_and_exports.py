"""The service locator, and the public surface of `hexa`."""

from __future__ import annotations

import re
import sys
import typing
from collections.abc import Iterator
from inspect import isclass, isfunction, ismodule
from typing import Any

import pytest

import hexa
import hexa.testing
from hexa import ServiceLocator, ServiceNotFoundError
from hexa.testing import memory_settings
from tests.support.worker import REPO


class TestServiceLocator:
    def test_register_get_clear(self) -> None:
        locator = ServiceLocator()
        locator.register("purchase_invoice_service", dict)
        assert locator.get_service("purchase_invoice_service") is dict
        assert "purchase_invoice_service" in locator
        assert list(locator) == ["purchase_invoice_service"]
        assert locator._services == {"purchase_invoice_service": dict}  # the seed's name
        assert locator.services() == {"purchase_invoice_service": dict}
        locator.services().clear()  # a copy: the locator keeps its services
        assert len(locator) == 1
        locator.clear()
        assert len(locator) == 0

    def test_missing_service_is_a_public_error_with_a_suggestion(self) -> None:
        locator = ServiceLocator()
        locator.register("purchase_invoice_service", dict)
        with pytest.raises(ServiceNotFoundError, match="did you mean 'purchase_invoice_service'"):
            locator.get_service("purchase_invoice_servce")
        with pytest.raises(KeyError):  # still a KeyError for code that catches that
            locator.get_service("nothing")


class TestUseApp:
    def test_use_app_returns_the_app_it_replaces_so_it_can_be_put_back(self) -> None:
        app = hexa.build_app(memory_settings())
        previous = hexa.use_app(app)
        try:
            assert hexa.current_app() is app
            assert hexa.use_app(previous) is app
        finally:
            app.close()


class TestPublicSurface:
    def test_all_is_sorted(self) -> None:
        assert hexa.__all__ == sorted(hexa.__all__)

    def test_all_is_exactly_the_public_names_of_the_package(self) -> None:
        public = {n for n, v in vars(hexa).items() if not n.startswith("_") and not ismodule(v)}
        assert public == set(hexa.__all__)

    def test_every_exported_name_is_defined_in_hexa(self) -> None:
        for name in hexa.__all__:
            obj = getattr(hexa, name)
            home = obj if isclass(obj) or isfunction(obj) else type(obj)
            if name != "RetryPolicy":  # a type alias: Backoff | FixedDelay
                assert home.__module__.startswith("hexa"), name

    def test_internals_stay_internal(self) -> None:
        for name in ("bridge", "EventLoopBridge", "TaskSpec", "Registry", "SendOptions"):
            assert name not in hexa.__all__

    def test_spec_contract_names(self) -> None:
        for name in (
            "Module", "module_task", "Backoff", "FixedDelay", "registry", "service_locator",
            "discover_modules", "ModuleRegistry", "create_celery_worker", "TaskResult",
        ):  # fmt: skip
            assert name in hexa.__all__

    def test_every_hexa_error_is_exported_so_callers_can_catch_it(self) -> None:
        missing = [
            e.__name__ for e in _subclasses(hexa.HexaError) if e.__name__ not in hexa.__all__
        ]
        assert missing == []
        errors = [getattr(hexa, n) for n in hexa.__all__ if n.endswith("Error")]
        assert all(issubclass(e, hexa.HexaError) for e in errors)

    def test_every_hexa_type_in_a_public_signature_is_exported(self) -> None:
        """A function returning (or taking) a type users cannot import is a hole in the API."""
        unexported = {
            f"{where} -> {kind.__name__}"
            for where, hints in _public_signatures()
            for kind in _hexa_types(hints)
            if kind.__name__ not in hexa.__all__ and kind.__name__ not in NOT_CONSTRUCTED
        }
        assert unexported == set()

    def test_the_signature_walk_sees_return_types(self) -> None:
        hints = dict(_public_signatures())
        assert hexa.HexaCelery in set(_hexa_types(hints["build_app"]))

    def test_every_exported_name_is_documented(self) -> None:
        page = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
        documented = set(re.findall(r"`(\w+)`", page))
        assert set(hexa.__all__) - documented == set()
        assert set(hexa.testing.__all__) - documented == set()


#: Internal types that appear only in the constructors of task objects and workflows, which users
#: never call: tasks are made by @module_task and remote_task, workflows by task.s(), .then() and
#: group().
NOT_CONSTRUCTED = {"TaskSpec", "SendOptions", "Step", "Chain", "Group"}


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("hexa"):
            yield sub
        yield from _subclasses(sub)


def _namespace() -> dict[str, Any]:
    """Every name of every hexa module, to resolve annotations imported for types only."""
    names: dict[str, Any] = {}
    for name, module in sys.modules.items():
        if name.startswith("hexa._"):
            names.update(vars(module))
    return names


def _functions(name: str, obj: object) -> Iterator[tuple[str, Any]]:
    """An exported function, or the public methods and properties of an exported class."""
    if isfunction(obj):
        yield name, obj
        return
    cls = obj if isclass(obj) else type(obj)
    for attr, member in vars(cls).items():
        if attr.startswith("_") and attr != "__init__":
            continue
        member = member.fget if isinstance(member, property) else member
        member = getattr(member, "__func__", member)  # classmethod, staticmethod
        if isfunction(member):
            yield f"{name}.{attr}", member


def _public_signatures() -> Iterator[tuple[str, dict[str, Any]]]:
    names = _namespace()
    for name in hexa.__all__:
        for where, function in _functions(name, getattr(hexa, name)):
            yield where, typing.get_type_hints(function, localns=names)


def _hexa_types(hints: dict[str, Any] | object) -> Iterator[type]:
    for hint in hints.values() if isinstance(hints, dict) else [hints]:
        if isclass(hint) and hint.__module__.startswith("hexa"):
            yield hint
        for arg in (typing.get_origin(hint), *typing.get_args(hint)):
            if arg is not None and arg is not hint:
                yield from _hexa_types(arg)
