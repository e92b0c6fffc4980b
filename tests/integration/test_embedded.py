"""The embedded default: no RABBITMQ_URL/REDIS_URL, no server, the same code runs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import StartWorker

NO_SERVERS = {"RABBITMQ_URL": "", "REDIS_URL": "", "HEXA_DEFAULT_QUEUE": ""}


def hexa(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in __import__("os").environ.items() if k not in NO_SERVERS}
    return subprocess.run(
        [sys.executable, "-m", "hexa", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


class TestEmbeddedDefault:
    def test_worker_and_client_in_one_directory_find_each_other(
        self, project: Callable[..., Path], start_worker: StartWorker
    ) -> None:
        root = project()
        worker = start_worker(root, NO_SERVERS, ["--concurrency=1"])
        connection = worker.events("worker.connection")[0]
        assert connection["broker"].startswith("embedded ")
        assert connection["backend"].startswith("embedded ")
        sent = hexa(root, "send", "invoicing.emit_invoice", "42", "--wait", "--timeout", "30")
        assert sent.returncode == 0, sent.stderr
        task_id, result = sent.stdout.split()[0], sent.stdout.splitlines()[1]
        assert json.loads(result) == "Factura 42 emitida!"
        assert (root / ".hexa" / "broker").is_dir()
        assert (root / ".hexa" / "results").is_dir()
        status = hexa(root, "status", task_id)
        assert "SUCCESS" in status.stdout

    def test_hexa_tasks_explains_discovery(self, project: Callable[..., Path]) -> None:
        root = project()
        near_miss = root / "modules" / "reports"
        near_miss.mkdir()
        (near_miss / "module.py").write_text(
            "from hexa import Module\n\ndef build() -> str:\n    return 'x'\n\n"
            "class ReportsModule(Module):\n    @property\n    def service(self):\n"
            "        return {'reports_task': {'build': build}}\n"
        )
        listed = hexa(root, "tasks")
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert "task    invoicing.emit_invoice" in lines
        assert any(
            line.startswith("task    yiqi_erp.create_invoice_from_purchase_invoice [async]")
            and "retry 5x" in line
            for line in lines
        )
        assert any("'reports_task'" in line and "reports_tasks" in line for line in lines)
