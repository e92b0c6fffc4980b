"""`service_locator`: the seed's process-wide map of service names to services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hexa._exceptions import ServiceNotFoundError, did_you_mean


class ServiceLocator:
    """Services by name. `_services` keeps the seed's name: code outside hexa reads it."""

    def __init__(self) -> None:
        self._services: dict[str, Any] = {}

    def register(self, name: str, service: Any) -> None:
        self._services[name] = service

    def get_service(self, name: str) -> Any:
        try:
            return self._services[name]
        except KeyError:
            hint = did_you_mean(name, self._services)
            raise ServiceNotFoundError(
                f"no service {name!r} in service_locator{hint} "
                "(services are registered by discover_modules() from each Module.service)"
            ) from None

    def services(self) -> dict[str, Any]:
        """Every service by name, as a new dict (changing it changes nothing here)."""
        return dict(self._services)

    def clear(self) -> None:
        self._services.clear()

    def __contains__(self, name: object) -> bool:
        return name in self._services

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._services))

    def __len__(self) -> int:
        return len(self._services)

    def __repr__(self) -> str:
        return f"<ServiceLocator services={len(self._services)}>"


service_locator = ServiceLocator()
