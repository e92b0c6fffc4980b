"""A message for a task the worker does not have: its failure and dead letter say why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from celery.exceptions import NotRegistered

from hexa import DeadLetterStore, UnknownTaskError
from hexa.testing import in_process_worker

# A module whose tasks service is misnamed `orders_task`: imported, but never discovered.
MISNAMED = {
    "modules/__init__.py": "",
    "modules/orders/__init__.py": "",
    "modules/orders/module.py": """
from hexa import Module


def place_order(order_id: int) -> int:
    return order_id


class OrdersModule(Module):
    @property
    def service(self) -> dict[str, object]:
        return {"orders_task": {"place_order": place_order}}
""",
}


class TestUnknownTask:
    def test_the_failure_and_the_dead_letter_name_the_near_miss_and_the_fix(
        self, make_project: Callable[[dict[str, str]], Path]
    ) -> None:
        make_project(MISNAMED)
        with in_process_worker("modules") as worker:
            sent = worker.app.send_task("orders.place_order", args=[1])
            with pytest.raises(UnknownTaskError) as failed:
                sent.get(timeout=10)
            letters = DeadLetterStore(worker.app.hexa_settings).letters()
        fix = "'orders_task' looks like a tasks service but does not end in '_tasks'; rename it"
        assert fix in str(failed.value)
        assert "never registered" not in repr(failed.value)
        assert isinstance(failed.value, NotRegistered)  # what plain Celery code catches
        (letter,) = letters
        assert (letter.task, letter.id) == ("orders.place_order", sent.id)
        assert fix in letter.reason
