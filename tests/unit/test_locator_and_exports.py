"""The service locator, and the public surface of `hexa`."""

from __future__ import annotations

import pytest

import hexa
from hexa import ServiceLocator, ServiceNotFoundError
from hexa.testing import memory_settings


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
    def test_all_is_sorted_and_complete(self) -> None:
        assert hexa.__all__ == sorted(hexa.__all__)
        for name in hexa.__all__:
            assert getattr(hexa, name) is not None

    def test_spec_contract_names(self) -> None:
        for name in (
            "Module", "module_task", "Backoff", "FixedDelay", "registry", "service_locator",
            "discover_modules", "ModuleRegistry", "create_celery_worker", "TaskResult",
        ):  # fmt: skip
            assert name in hexa.__all__

    def test_every_error_derives_from_hexa_error(self) -> None:
        errors = [getattr(hexa, n) for n in hexa.__all__ if n.endswith("Error")]
        assert all(issubclass(e, hexa.HexaError) for e in errors)
