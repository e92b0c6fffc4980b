"""A failing task is logged once: hexa's `task.failed`, with its traceback, and no Celery echo."""

from __future__ import annotations

import logging

import pytest

from hexa import module_task
from hexa.testing import capture_logs, run_eagerly


def _broken(order_id: int) -> int:
    raise ValueError(f"order {order_id} is broken")


class TestFailureLogs:
    def test_the_failure_is_one_event_with_its_traceback(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        task = module_task(module="orders")(_broken)
        caplog.set_level(logging.DEBUG, logger="celery.app.trace")
        with capture_logs() as logs:
            run = run_eagerly(task, 7)
        assert run.status == "FAILURE"
        (failed,) = logs.named("task.failed")
        assert failed["error"] == "ValueError: order 7 is broken"
        assert failed["exc_info"] is run.error
        assert failed["exc_info"].__traceback__ is not None  # rendered once, by structlog
        echoes = [
            r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info is not None
        ]
        assert echoes == []  # Celery's "raised unexpected" line and its traceback
