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


FAILING = """\
from hexa import Module, module_task


@module_task(module="failing")
def divide(a: int, b: int) -> float:
    return a / b


class FailingModule(Module):
    pass
"""

# A script in a subfolder of the project: no RABBITMQ_URL/REDIS_URL, so the embedded broker.
SUBFOLDER_CLIENT = """\
import hexa
print(hexa.current_app().send_task("invoicing.emit_invoice", args=[7]).get(timeout=30))
"""


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

    def test_a_client_in_a_subfolder_uses_the_projects_hexa(
        self, project: Callable[..., Path], start_worker: StartWorker
    ) -> None:
        root = project()
        start_worker(root, NO_SERVERS, ["--concurrency=1"])
        scripts = root / "scripts"
        scripts.mkdir()
        (scripts / "enqueue.py").write_text(SUBFOLDER_CLIENT)
        env = {k: v for k, v in __import__("os").environ.items() if k not in NO_SERVERS}
        done = subprocess.run([sys.executable, "enqueue.py"], cwd=scripts, env=env,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert (done.returncode, done.stdout) == (0, "Factura 7 emitida!\n"), done.stderr
        assert not (scripts / ".hexa").exists()

    def test_send_wait_on_a_failed_task_prints_its_error_and_exits_1(
        self, project: Callable[..., Path], start_worker: StartWorker
    ) -> None:
        root = project()
        (root / "modules" / "failing").mkdir()
        (root / "modules" / "failing" / "module.py").write_text(FAILING)
        start_worker(root, NO_SERVERS, ["--concurrency=1"])
        sent = hexa(root, "send", "failing.divide", "1", "0", "--wait", "--timeout", "30")
        assert sent.returncode == 1, sent.stdout + sent.stderr
        assert sent.stderr == "hexa: failing.divide failed: ZeroDivisionError: division by zero\n"
        assert len(sent.stdout.split()) == 1  # the task id, and no result
