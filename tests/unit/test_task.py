"""The task objects' dispatch side: `.with_options()` copies, `RemoteTask`, nothing mutated."""

from __future__ import annotations

from typing import Any

import pytest

from hexa import (
    ConfigurationError,
    DispatchError,
    RemoteTask,
    remote_task,
)
from hexa._options import SendOptions
from hexa._spec import TaskSpec
from hexa._task import Task
from tests.unit.conftest import record_publishes

Published = list[tuple[str, tuple[Any, ...], dict[str, Any], SendOptions, str | None]]


def _emit(invoice_id: int, note: str = "") -> str:
    return f"{invoice_id}{note}"


# What @module_task(module="unit_dispatch", queue="invoices") makes, kept out of the registry
# that other tests share.
emit = Task(TaskSpec(func=_emit, module="unit_dispatch", name="emit", queue="invoices"))


@remote_task("billing.charge", queue="billing")
def charge(amount: int, *, currency: str = "ARS") -> str:
    raise NotImplementedError


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Published:
    """What would have been published, in place of the broker."""
    return record_publishes(monkeypatch, "hexa._task.publish")


class TestWithOptions:
    def test_a_new_task_of_the_same_kind_carries_the_options(self, published: Published) -> None:
        later = emit.with_options(countdown=5, priority=2)
        assert type(later) is type(emit)
        assert later is not emit
        later.send(1)
        emit.send(2)
        assert [call[3] for call in published] == [
            SendOptions(countdown=5, priority=2),
            SendOptions(),
        ]

    def test_options_accumulate_over_copies(self, published: Published) -> None:
        emit.with_options(countdown=5).with_options(queue="other").send(1)
        assert published[0][3] == SendOptions(countdown=5, queue="other")

    def test_the_shared_task_is_immutable(self) -> None:
        with pytest.raises(AttributeError, match=r"use \.with_options"):
            emit.spec = emit.spec  # type: ignore[misc]

    def test_unknown_options_are_refused_with_the_valid_ones(self) -> None:
        with pytest.raises(TypeError, match="retry policy is declared on the task"):
            emit.with_options(retries=3)  # type: ignore[arg-type]

    def test_bad_values_are_refused_when_set(self) -> None:
        with pytest.raises(DispatchError, match="priority=10"):
            emit.with_options(priority=10)


class TestRemoteTask:
    def test_sends_by_name_with_its_declared_queue(self, published: Published) -> None:
        assert isinstance(charge, RemoteTask)
        assert charge.name == "billing.charge"
        assert repr(charge) == "<hexa remote task billing.charge>"
        charge.send(10, currency="USD")
        assert published == [
            ("billing.charge", (10,), {"currency": "USD"}, SendOptions(), "billing")
        ]

    def test_checks_arguments_against_the_written_signature(self, published: Published) -> None:
        with pytest.raises(TypeError, match=r"billing\.charge\(amount: int, \*, currency"):
            charge.send(10, "USD")  # type: ignore[misc]
        assert published == []

    def test_cannot_run_in_process(self) -> None:
        with pytest.raises(TypeError, match="not callable"):
            charge(1)  # type: ignore[operator]

    def test_with_options_keeps_it_remote(self) -> None:
        assert isinstance(charge.with_options(countdown=1), RemoteTask)

    def test_a_name_without_a_module_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match=r"use the full name .<module>\.<task>."):
            remote_task("charge")
