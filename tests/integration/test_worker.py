"""A real `hexa worker` on RabbitMQ + Redis, called by name from a plain Celery client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery

from tests.conftest import StartWorker

pytestmark = pytest.mark.integration

SEED_FORMAT = Path(__file__).parent / "projects" / "seed_format"


class TestWorkerOnRealServices:
    def test_start_up_report_lists_every_example_task(
        self, project: Callable[..., Path], start_worker: StartWorker, real_env: dict[str, str]
    ) -> None:
        worker = start_worker(project(), real_env)
        names = [e["name"] for e in worker.events("task.registered")]
        assert names == [
            "invoicing.emit_invoice",
            "notifications.send_notification",
            "yiqi_erp.create_invoice_from_purchase_invoice",
        ]
        yiqi = worker.events("task.registered")[2]
        assert yiqi["is_async"] is True
        assert "retry 5x" in yiqi["retry"]
        assert worker.events("discovery.total")[0]["tasks"] == 3

    def test_plain_client_gets_results_by_name(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        start_worker(project(), real_env)
        assert plain_client.send_task("invoicing.emit_invoice").get(timeout=20) == (
            "Factura emitida!"
        )
        sent = plain_client.send_task("notifications.send_notification", args=[123, "Hello!"])
        assert sent.get(timeout=20) == "Sent"
        erp = plain_client.send_task("yiqi_erp.create_invoice_from_purchase_invoice", args=[7])
        assert erp.get(timeout=20)["purchase_invoice_id"] == 7

    def test_hand_written_seed_formats_run(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(SEED_FORMAT), real_env)
        retries = {e["name"]: e.get("retry") for e in worker.events("task.registered")}
        assert retries["seed_format.fixed"] == (
            "retry 3x on ConnectionError, TimeoutError: every 60s"
        )
        assert plain_client.send_task("seed_format.simple", args=[2, 3]).get(timeout=20) == 5
        assert plain_client.send_task("seed_format.fixed", args=["x"]).get(timeout=20) == "X"
        assert plain_client.send_task("seed_format.asynchronous").get(timeout=20) == "async ok"

    def test_outcomes_are_logged_with_task_id_and_duration(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(), real_env)
        ok = plain_client.send_task("notifications.send_notification", args=[1, "hi"])
        ok.get(timeout=20)
        bad = plain_client.send_task("notifications.send_notification", args=[1])  # missing arg
        with pytest.raises(TypeError):
            bad.get(timeout=20)
        succeeded = worker.wait_for("task.succeeded")[0]
        assert succeeded["task_id"] == ok.id
        assert succeeded["task"] == "notifications.send_notification"
        assert succeeded["duration"] >= 0
        failed = worker.wait_for("task.failed")[0]
        assert failed["task_id"] == bad.id
        assert "TypeError" in failed["error"]
        # logged once, with its traceback once: no Celery "raised unexpected" echo
        assert failed["exception"].startswith("Traceback (most recent call last)")
        assert worker.output().count("Traceback (most recent call last)") == 1
        assert "raised unexpected" not in worker.output()
        # a log call inside the task body carries the task id too
        body = [e for e in worker.events("notification.sent") if e.get("task_id") == ok.id]
        assert body, worker.output()
