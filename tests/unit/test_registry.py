"""`@module_task` records metadata; the registry emits the seed's service dicts."""

from __future__ import annotations

import inspect

import pytest

from hexa import (
    AsyncTask,
    Backoff,
    ConfigurationError,
    DuplicateTaskError,
    FixedDelay,
    Task,
    UnknownTaskError,
    module_task,
    registry,
)
from hexa._spec import module_of


def emit(invoice_id: int) -> str:
    return f"emitted {invoice_id}"


class TestModuleTask:
    def test_bare_decorator_keeps_a_plain_callable(self) -> None:
        task = module_task(module="billing")(emit)
        assert isinstance(task, Task)
        assert task(3) == "emitted 3"
        assert task.name == "billing.emit"
        assert inspect.signature(task) == inspect.signature(emit)
        assert task.__doc__ == emit.__doc__
        assert task.__name__ == "emit"

    def test_async_function_gives_an_async_task_whose_call_is_the_coroutine(self) -> None:
        async def fetch(n: int) -> int:
            return n * 2

        task = module_task(module="billing")(fetch)
        assert isinstance(task, AsyncTask)
        coroutine = task(4)
        assert inspect.iscoroutine(coroutine)
        coroutine.close()

    def test_options_are_recorded_not_bound(self) -> None:
        task = module_task(module="billing", name="emit_it", queue="slow", timeout=5)(emit)
        assert task.name == "billing.emit_it"
        assert (task.spec.queue, task.spec.timeout) == ("slow", 5)
        assert "billing.emit_it" in registry

    def test_module_is_inferred_from_the_modules_package(self) -> None:
        def f() -> None: ...

        f.__module__ = "modules.invoicing.adapter.input.tasks.invoice"
        assert module_of(f) == "invoicing"
        f.__module__ = "myapp.modules.shipping.tasks"
        assert module_of(f) == "shipping"

    def test_function_outside_modules_needs_module_argument(self) -> None:
        with pytest.raises(ConfigurationError, match=r"pass @module_task\(module='<name>'\)"):
            module_task(emit)

    def test_invalid_names_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="identifier"):
            module_task(module="bill-ing")(emit)
        with pytest.raises(ConfigurationError, match="timeout"):
            module_task(module="billing", timeout=0)(emit)

    def test_two_functions_with_one_name_is_an_error_naming_both(self) -> None:
        def other(invoice_id: int) -> str:
            return ""

        module_task(module="billing", name="emit")(emit)
        with pytest.raises(DuplicateTaskError) as raised:
            module_task(module="billing", name="emit")(other)
        assert "test_registry.emit" in str(raised.value)
        assert "other" in str(raised.value)

    def test_redeclaring_the_same_function_replaces_it(self) -> None:
        first = module_task(module="billing")(emit)
        second = module_task(module="billing")(emit)
        assert registry.get("billing.emit") is second is not first

    def test_task_is_immutable(self) -> None:
        task = module_task(module="billing")(emit)
        with pytest.raises(AttributeError, match="with_options"):
            task.spec = None  # type: ignore[misc]


class TestRegistryServices:
    def test_simple_format_without_options(self) -> None:
        task = module_task(module="billing")(emit)
        assert registry.services(module="billing") == {"billing_tasks": {"emit": task}}

    def test_advanced_format_carries_the_celery_options(self) -> None:
        task = module_task(module="billing", retry=FixedDelay(delay=5, max_retries=2))(emit)
        entry = registry.services(module="billing")["billing_tasks"]["emit"]
        assert entry == {
            "task": task,
            "config": {"autoretry_for": (Exception,), "max_retries": 2, "default_retry_delay": 5},
        }

    def test_backoff_queue_and_timeout_in_config(self) -> None:
        module_task(module="billing", retry=Backoff(max_retries=5, max=600), queue="q", timeout=9)(
            emit
        )
        config = registry.services(module="billing")["billing_tasks"]["emit"]["config"]  # type: ignore[index]
        assert config["retry_kwargs"] == {"max_retries": 5}
        assert config["retry_backoff"] is True
        assert config["retry_backoff_max"] == 600
        assert (config["queue"], config["timeout"]) == ("q", 9)

    def test_services_without_module_lists_every_module(self) -> None:
        module_task(module="billing")(emit)
        module_task(module="shipping")(emit)
        services = registry.services()
        assert {"billing_tasks", "shipping_tasks"} <= set(services)

    def test_unknown_task_suggests_the_closest_name(self) -> None:
        module_task(module="acc", name="add")(emit)
        with pytest.raises(UnknownTaskError, match=r"did you mean 'acc.add'\?"):
            registry.get("acc.ad")

    def test_repr_counts_tasks(self) -> None:
        module_task(module="billing")(emit)
        assert "tasks=" in repr(registry)
        assert any(t.name == "billing.emit" for t in registry)
