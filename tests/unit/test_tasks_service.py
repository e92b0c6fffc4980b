"""`tasks_service.send_task`: the seed's dispatch by name, checked before publishing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hexa import DispatchError, TasksService, UnknownTaskError
from hexa._definitions import definitions
from hexa._options import SendOptions
from tests.unit.conftest import record_publishes

Published = list[tuple[str, list[Any], dict[str, Any], SendOptions, str | None]]


def add(a: int, b: int = 0) -> int:
    return a + b


async def notify(user_id: int, message: str) -> str:
    return "Sent"


SERVICES = {
    "acc_tasks": {"add": add, "slow_add": {"task": add, "config": {"queue": "slow"}}},
    "notifications_tasks": {"notify": notify},
}


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Published:
    """What would have been published, in place of the broker."""
    return record_publishes(monkeypatch, "hexa._tasks_service.publish")


@pytest.fixture
def service() -> TasksService:
    return TasksService(definitions(SERVICES))


class TestSendTask:
    def test_a_checked_call_is_published_once_with_its_options(
        self, service: TasksService, published: Published
    ) -> None:
        result = service.send_task("acc.add", args=[1], kwargs={"b": 2}, countdown=3, priority=1)
        assert result == "result"
        assert published == [("acc.add", [1], {"b": 2}, SendOptions(countdown=3, priority=1), None)]

    def test_the_tasks_declared_queue_goes_along(
        self, service: TasksService, published: Published
    ) -> None:
        service.send_task("acc.slow_add", args=(1, 2))
        assert published[0][4] == "slow"

    def test_async_tasks_are_checked_against_their_own_signature(
        self, service: TasksService, published: Published
    ) -> None:
        service.send_task("notifications.notify", kwargs={"user_id": 1, "message": "hi"})
        with pytest.raises(TypeError, match="missing a required argument: 'message'"):
            service.send_task("notifications.notify", args=[1])
        assert len(published) == 1

    @pytest.mark.parametrize(
        ("call", "error", "message"),
        [
            (lambda s: s.send_task("acc.ad"), UnknownTaskError, "did you mean 'acc.add'"),
            (lambda s: s.send_task("zzz"), UnknownTaskError, r"^unknown task 'zzz'$"),
            (lambda s: s.send_task("acc.add", args=[1, 2, 3]), TypeError, "too many positional"),
            (lambda s: s.send_task("acc.add", args=[{1}]), DispatchError, "argument 'a' cannot"),
            (lambda s: s.send_task("acc.add", retries=3), TypeError, "declared on the task"),
            (lambda s: s.send_task("acc.ad", retry_policy={}), TypeError, "retry_policy="),
            (lambda s: s.send_task("acc.add", args=[1], priority=10), DispatchError, "priority"),
            (lambda s: s.send_task("acc.add", args=[1], countdown=-1), DispatchError, ">= 0"),
        ],
    )
    def test_bad_calls_are_refused_and_nothing_is_published(
        self,
        service: TasksService,
        published: Published,
        call: Callable[[TasksService], object],
        error: type[Exception],
        message: str,
    ) -> None:
        with pytest.raises(error, match=message):
            call(service)
        assert published == []

    def test_names_are_sorted_and_counted(self, service: TasksService) -> None:
        assert service.names() == ["acc.add", "acc.slow_add", "notifications.notify"]
        assert repr(service) == "<TasksService tasks=3>"
