"""Typed dispatch on the real RabbitMQ + Redis: `.send()`, options, async callers, the stubs,
`tasks_service`, the CLI, and every bad input refused before anything is published."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from celery import Celery
from kombu import Connection

from hexa import (
    DispatchError,
    ModuleRegistry,
    ServiceLocator,
    TasksService,
    UnknownTaskError,
    discover_modules,
)
from modules.invoicing.adapter.input.tasks.invoice import emit_invoice
from modules.yiqi_erp.adapter.input.tasks.yiqi_erp import create_invoice_from_purchase_invoice
from tests.conftest import StartWorker
from tests.support.worker import REPO, WorkerProcess

pytestmark = pytest.mark.integration

TYPED_CALLS = Path(__file__).parent / "projects" / "typed_calls"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def worker(
    project: Callable[..., Path], start_worker: StartWorker, real_env: dict[str, str]
) -> WorkerProcess:
    """A real worker for the example modules plus `typed_calls`, on this test's queue."""
    return start_worker(project(TYPED_CALLS), {**real_env, "INVOICING_EMIT_SECONDS": "0.5"})


@pytest.fixture
def tasks_service() -> Iterator[TasksService]:
    """The `tasks_service` discovery registers, from a locator of this test's own."""
    locator = ServiceLocator()
    discover_modules("modules", "module.py", locator=locator)
    yield locator.get_service("tasks_service")
    ModuleRegistry().clear()


def run_python(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in `cwd`, with the test's services."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def run_hexa(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m hexa ARGS` in `cwd`, as a user runs it from a shell."""
    return run_python(cwd, env, "-m", "hexa", *args)


class TestSendFromModuleImports:
    def test_send_then_get_returns_the_tasks_value(
        self, worker: WorkerProcess, hexa_client: Celery
    ) -> None:
        result = emit_invoice.send(123)
        assert result.get(timeout=20) == "Factura 123 emitida!"
        assert (result.status, result.ready()) == ("SUCCESS", True)
        assert [e["task_id"] for e in worker.wait_for("task.succeeded")] == [result.id]

    def test_with_options_countdown_delays_the_run(
        self, worker: WorkerProcess, hexa_client: Celery
    ) -> None:
        started = time.monotonic()
        delayed = emit_invoice.with_options(countdown=2).send(7)
        assert delayed.get(timeout=30) == "Factura 7 emitida!"
        assert time.monotonic() - started >= 1.8  # the ETA was honoured (generous bound)
        # The shared task is unchanged: no countdown leaks into a plain send.
        assert emit_invoice.send(8).get(timeout=20) == "Factura 8 emitida!"

    @pytest.mark.anyio
    async def test_async_callers_await_without_blocking_their_loop(
        self, worker: WorkerProcess, hexa_client: Celery
    ) -> None:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            slow = await emit_invoice.send_async(5)  # the task sleeps 0.5 s on the worker
            assert await slow == "Factura 5 emitida!"
            erp = await create_invoice_from_purchase_invoice.send_async(9, company_id=2)
            created = await erp.wait(timeout=20)
            group.cancel_scope.cancel()
        assert created["purchase_invoice_id"] == 9
        assert created["company_id"] == 2
        assert ticks >= 10  # the loop kept running while the results were awaited


CLIENT = """\
import importlib.util, json, sys
from decimal import Decimal
from datetime import date
from hexa_stubs import invoicing, typed_calls, yiqi_erp

out = {
    "modules_importable": importlib.util.find_spec("modules") is not None,
    "emit": invoicing.emit_invoice.send(123).get(timeout=20),
    "erp": yiqi_erp.create_invoice_from_purchase_invoice.send(4).get(timeout=20),
    "total": typed_calls.total.send([1, 2, 3]).get(timeout=20),
    "payment": typed_calls.schedule_payment.send(
        Decimal("10.5"), date(2026, 1, 2), currency="USD", tags=["a"]
    ).get(timeout=20),
    "whoami": typed_calls.whoami.with_options(priority=5).send("me").get(timeout=20),
}
try:
    invoicing.emit_invoice.send(1, 2)
except TypeError as error:
    out["refused"] = str(error)
out["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] == "modules")
print(json.dumps(out))
"""


class TestGeneratedStubs:
    def test_a_process_without_the_modules_sends_through_the_stubs(
        self, worker: WorkerProcess, real_env: dict[str, str], tmp_path: Path
    ) -> None:
        client = tmp_path / "client"
        client.mkdir()
        made = run_hexa(worker.cwd, real_env, "stubs", "--out", str(client / "hexa_stubs.py"))
        assert made.returncode == 0, made.stderr
        (client / "client.py").write_text(CLIENT)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        ran = subprocess.run(
            [sys.executable, "client.py"],
            cwd=client,
            env={**env, **real_env},
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        out = json.loads(ran.stdout)
        assert out["modules_importable"] is False
        assert out["loaded"] == []
        assert out["emit"] == "Factura 123 emitida!"
        assert out["erp"]["purchase_invoice_id"] == 4
        assert out["total"] == 6
        assert out["payment"] == "10.5 USD due 2026-01-02 tags=['a']"
        assert out["whoami"].startswith("me:")
        assert "too many positional arguments" in out["refused"]


class TestTasksService:
    def test_send_task_runs_checked_calls_by_name(
        self, worker: WorkerProcess, hexa_client: Celery, tasks_service: TasksService
    ) -> None:
        by_args = tasks_service.send_task("invoicing.emit_invoice", args=[3])
        by_kwargs = tasks_service.send_task(
            "notifications.send_notification",
            kwargs={"user_id": 1, "message": "hi"},
            countdown=0,
            priority=4,
        )
        assert by_args.get(timeout=20) == "Factura 3 emitida!"
        assert by_kwargs.get(timeout=20) == "Sent"

    def test_send_task_refuses_the_seeds_retry_options(self, tasks_service: TasksService) -> None:
        with pytest.raises(DispatchError, match="retry policy is declared on the task"):
            tasks_service.send_task("invoicing.emit_invoice", args=[1], retries=3)


class TestCommandLine:
    def test_send_wait_then_status(self, worker: WorkerProcess, real_env: dict[str, str]) -> None:
        sent = run_hexa(worker.cwd, real_env, "send", "invoicing.emit_invoice", "42", "--wait")
        assert sent.returncode == 0, sent.stderr
        task_id, value = sent.stdout.splitlines()
        assert json.loads(value) == "Factura 42 emitida!"
        status = run_hexa(worker.cwd, real_env, "status", task_id)
        assert status.returncode == 0, status.stderr
        assert status.stdout.splitlines() == [f"{task_id}  SUCCESS", '"Factura 42 emitida!"']

    def test_send_with_kwargs_and_countdown(
        self, worker: WorkerProcess, real_env: dict[str, str]
    ) -> None:
        sent = run_hexa(
            worker.cwd,
            real_env,
            "send",
            "notifications.send_notification",
            "--kwargs",
            '{"user_id": 7, "message": "hi"}',
            "--countdown",
            "1",
            "--wait",
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.splitlines()[1] == '"Sent"'


class TestExample:
    def test_calling_tasks_example_runs_as_documented(
        self, worker: WorkerProcess, real_env: dict[str, str]
    ) -> None:
        shutil.copytree(REPO / "examples", worker.cwd / "examples")
        ran = run_python(worker.cwd, real_env, "-m", "examples.calling_tasks")
        assert ran.returncode == 0, ran.stderr
        lines = ran.stdout.splitlines()
        assert lines[:3] == ["Factura 123 emitida!", "Factura 7 emitida!", "Sent"]
        assert lines[3].startswith("refused before publishing: send_task('invoicing.emit_invoice')")
        assert "'purchase_invoice_id': 42" in lines[4]


def queued(rabbitmq_url: str, queue: str) -> int:
    """Messages waiting in `queue` (a passive declare: it never creates the queue)."""
    with Connection(rabbitmq_url) as conn:
        _, count, _ = conn.default_channel.queue_declare(queue, passive=True)
        return int(count)


BAD_TASK_CALLS: dict[str, tuple[Callable[[], object], type[Exception], str]] = {
    "extra positional": (
        lambda: emit_invoice.send(1, 2),
        TypeError,
        r"invoicing\.emit_invoice\(invoice_id: int \| None = None\) -> str: "
        "too many positional arguments",
    ),
    "misnamed keyword": (
        lambda: emit_invoice.send(invoice=1),
        TypeError,
        "unexpected keyword argument 'invoice'; did you mean 'invoice_id'",
    ),
    "missing argument": (
        lambda: create_invoice_from_purchase_invoice.send(),
        TypeError,
        "missing a required argument: 'purchase_invoice_id'",
    ),
    "not JSON": (
        lambda: emit_invoice.send(object()),
        DispatchError,
        "argument 'invoice_id' cannot be sent: object is not JSON-serializable",
    ),
    "unknown option": (
        lambda: emit_invoice.with_options(delay=3),
        DispatchError,
        "got delay=; valid options: countdown, eta, expires, priority, queue",
    ),
    "retries option": (
        lambda: emit_invoice.with_options(retries=3),
        DispatchError,
        "retry policy is declared on the task",
    ),
    "priority out of range": (
        lambda: emit_invoice.with_options(priority=10).send(1),
        DispatchError,
        "priority=10: must be a whole number from 0 to 9",
    ),
    "negative countdown": (
        lambda: emit_invoice.with_options(countdown=-1).send(1),
        DispatchError,
        "countdown=-1: must be >= 0",
    ),
}

BAD_SERVICE_CALLS: dict[str, tuple[dict[str, Any], type[Exception], str]] = {
    "missing argument": (
        {"name": "notifications.send_notification", "args": [1]},
        TypeError,
        "missing a required argument: 'message'",
    ),
    "extra keyword": (
        {"name": "invoicing.emit_invoice", "kwargs": {"invoice_id": 1, "urgent": True}},
        TypeError,
        "unexpected keyword argument 'urgent'",
    ),
    "not JSON": (
        {"name": "notifications.send_notification", "args": [1, {1, 2}]},
        DispatchError,
        "argument 'message' cannot be sent: set is not JSON-serializable",
    ),
    "retries": (
        {"name": "invoicing.emit_invoice", "retries": 3},
        DispatchError,
        "got retries=; retry policy is declared on the task .*; valid options: args, kwargs, "
        "countdown, eta, expires, priority, queue",
    ),
    "retry_policy": (
        {"name": "invoicing.emit_invoice", "retry_policy": {"max_retries": 3}},
        DispatchError,
        "got retry_policy=; retry policy is declared on the task",
    ),
    "unknown name": (
        {"name": "invoicing.emit_invoce"},
        UnknownTaskError,
        "unknown task 'invoicing.emit_invoce'; did you mean 'invoicing.emit_invoice'",
    ),
    "priority": (
        {"name": "invoicing.emit_invoice", "priority": 12},
        DispatchError,
        "priority=12: must be a whole number from 0 to 9",
    ),
    "countdown": (
        {"name": "invoicing.emit_invoice", "countdown": -5},
        DispatchError,
        "countdown=-5: must be >= 0",
    ),
}


class TestNothingIsPublishedOnBadInput:
    """No worker consumes the test's queue: one valid message is there, and stays alone."""

    @pytest.fixture
    def one_message(self, hexa_client: Celery, rabbitmq_url: str, queue: str) -> Callable[[], int]:
        emit_invoice.send(1)  # declares the queue the way Celery does, and counts as one
        assert queued(rabbitmq_url, queue) == 1
        return lambda: queued(rabbitmq_url, queue)

    @pytest.mark.parametrize("case", sorted(BAD_TASK_CALLS))
    def test_task_send(self, one_message: Callable[[], int], case: str) -> None:
        call, error, message = BAD_TASK_CALLS[case]
        with pytest.raises(error, match=message):
            call()
        assert one_message() == 1

    @pytest.mark.parametrize("case", sorted(BAD_SERVICE_CALLS))
    def test_tasks_service(
        self, one_message: Callable[[], int], tasks_service: TasksService, case: str
    ) -> None:
        kwargs, error, message = BAD_SERVICE_CALLS[case]
        with pytest.raises(error, match=message):
            tasks_service.send_task(**kwargs)
        assert one_message() == 1

    def test_cli_send_to_an_unknown_name(
        self, one_message: Callable[[], int], real_env: dict[str, str]
    ) -> None:
        sent = run_hexa(REPO, real_env, "send", "invoicing.emit_invoce", "1")
        assert sent.returncode == 2
        assert "did you mean 'invoicing.emit_invoice'" in sent.stderr
        assert one_message() == 1
