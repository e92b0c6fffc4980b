"""`hexa.testing`: the in-process worker, eager runs with retries, log capture, the plugin."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

import hexa
from hexa import Backoff, FixedDelay, module_task, registry, service_locator
from hexa.testing import EventLog, InProcessWorker, capture_logs, in_process_worker, run_eagerly
from tests.support.fresh import fresh_repo_modules
from tests.support.worker import REPO

EXAMPLE_TASKS = [
    "invoicing.emit_invoice",
    "notifications.send_notification",
    "yiqi_erp.create_invoice_from_purchase_invoice",
]
_calls = itertools.count()
_flaky_failures: dict[str, int] = {}


@module_task(module="plugin_demo", retry=FixedDelay(delay=2, max_retries=3, on=(ConnectionError,)))
def flaky(key: str, failures: int) -> str:
    """Fails with ConnectionError `failures` times per key, then succeeds."""
    seen = _flaky_failures.get(key, 0)
    if seen < failures:
        _flaky_failures[key] = seen + 1
        raise ConnectionError(f"down ({seen + 1})")
    return f"{key} ok"


@module_task(module="plugin_demo", retry=Backoff(max_retries=3, base=1, jitter=False))
def always_down() -> None:
    raise ConnectionError("still down")


@module_task(module="plugin_demo", retry=FixedDelay(delay=1, on=(ConnectionError,)))
def wrong_type() -> None:
    raise ValueError("not retried")


@module_task(module="plugin_demo", bind=True, retry=FixedDelay(delay=0, max_retries=2))
def counts_retries(task: object) -> int:
    retries: int = task.request.retries  # type: ignore[attr-defined]
    if retries < 2:
        raise RuntimeError("again")
    return retries


@module_task(module="plugin_demo")
def double(n: int) -> int:
    return 2 * n


_gate = threading.Event()


@module_task(module="plugin_demo")
def wait_for_gate() -> bool:
    """True only if `open_gate` ran while this task was still running."""
    return _gate.wait(5)


@module_task(module="plugin_demo")
def open_gate() -> None:
    _gate.set()


@pytest.fixture
def repo_modules() -> Iterator[None]:
    with fresh_repo_modules():
        yield


@pytest.fixture
def hexa_modules(repo_modules: None) -> str:
    """The plugin's own fixture, overridden: discover the example modules afresh."""
    return "modules"


@pytest.fixture
def declared() -> None:
    """Put this file's tasks back in the registry (unit tests start from an empty one)."""
    for task in (double, wait_for_gate, open_gate):
        registry.add(task)


class TestInProcessWorker:
    def test_send_get_reaches_the_worker_with_no_server(self, hexa_worker: InProcessWorker) -> None:
        from modules.invoicing.adapter.input.tasks.invoice import emit_invoice

        assert hexa_worker.task_names == EXAMPLE_TASKS
        assert emit_invoice.send(7).get(timeout=10) == "Factura 7 emitida!"

    def test_async_task_uses_services_discovery_registered(
        self, hexa_worker: InProcessWorker
    ) -> None:
        from modules.yiqi_erp.adapter.input.tasks.yiqi_erp import (
            create_invoice_from_purchase_invoice,
        )

        result = create_invoice_from_purchase_invoice.send(3).get(timeout=10)
        assert result["purchase_invoice_id"] == 3
        assert result["total"] == 300

    def test_tasks_service_sends_by_name(self, hexa_worker: InProcessWorker) -> None:
        tasks_service = service_locator.get_service("tasks_service")
        sent = tasks_service.send_task("notifications.send_notification", args=[1, "hi"])
        assert sent.get(timeout=10) == "Sent"

    def test_task_events_carry_the_task_id(
        self, hexa_worker: InProcessWorker, hexa_logs: EventLog
    ) -> None:
        from modules.invoicing.adapter.input.tasks.invoice import emit_invoice

        sent = emit_invoice.send(1)
        sent.get(timeout=10)
        succeeded = hexa_logs.named("task.succeeded")
        assert [(e["task"], e["task_id"]) for e in succeeded] == [
            ("invoicing.emit_invoice", sent.id)
        ]

    def test_previous_app_and_services_are_back_afterwards(self, repo_modules: None) -> None:
        service_locator.register("mine", object)
        before = hexa.current_app()
        with in_process_worker() as worker:
            assert hexa.current_app() is worker.app
            assert "purchase_invoice_service" in service_locator
        assert hexa.current_app() is before
        assert "mine" in service_locator
        assert "purchase_invoice_service" not in service_locator

    def test_a_package_pytest_cannot_import_is_explained(self) -> None:
        before = hexa.current_app()
        service_locator.register("mine", object)
        with (
            pytest.raises(hexa.DiscoveryError, match=r"no 'nowhere' package .*hexa_modules"),
            in_process_worker("nowhere"),
        ):
            pass
        assert hexa.current_app() is before  # nothing is left half set up
        assert "mine" in service_locator

    def test_threads_pool_runs_tasks_side_by_side(self, declared: None) -> None:
        _gate.clear()
        with in_process_worker(None, pool="threads", concurrency=2):
            waiting = wait_for_gate.send()
            open_gate.send()  # `-> None`: stores no result, nothing to get
            assert waiting.get(timeout=10) is True

    def test_none_runs_the_tasks_the_registry_holds(self, declared: None) -> None:
        with in_process_worker(None) as worker:
            assert "plugin_demo.double" in worker.task_names
            assert double.send(21).get(timeout=10) == 42


class TestRunEagerly:
    def test_listed_error_is_retried_until_success(self) -> None:
        run = run_eagerly(flaky, f"k{next(_calls)}", 2)
        assert run.succeeded
        assert run.attempts == 3
        assert run.delays == (2.0, 2.0)
        assert run.get().endswith(" ok")

    def test_exhausted_retries_fail_after_max_retries_plus_one_attempts(self) -> None:
        run = run_eagerly(always_down)
        assert run.status == "FAILURE"
        assert run.attempts == 4
        assert run.delays == (1.0, 2.0, 4.0)  # Backoff without jitter: base * 2**retries
        with pytest.raises(ConnectionError, match="still down"):
            run.get()

    def test_unlisted_error_fails_at_once(self) -> None:
        run = run_eagerly(wrong_type)
        assert (run.status, run.attempts, run.delays) == ("FAILURE", 1, ())
        assert isinstance(run.error, ValueError)

    def test_bound_task_sees_its_retry_count(self) -> None:
        run = run_eagerly(counts_retries)
        assert run.get() == 2
        assert run.attempts == 3

    def test_arguments_are_checked_like_send(self) -> None:
        with pytest.raises(TypeError, match=r"plugin_demo\.double"):
            run_eagerly(double, "1", 2)  # type: ignore[call-arg]

    def test_retries_are_logged_as_task_retry_events(self, hexa_logs: EventLog) -> None:
        run_eagerly(flaky, f"k{next(_calls)}", 2)
        retries = hexa_logs.named("task.retry")
        assert [(e["attempt"], e["delay"]) for e in retries] == [(1, 2), (2, 2)]
        assert retries[0]["error"] == "ConnectionError: down (1)"
        assert hexa_logs.names()[-1] == "task.succeeded"


class TestCaptureLogs:
    def test_sees_loggers_structlog_already_cached(self) -> None:
        saved = structlog.get_config()
        structlog.configure(processors=[structlog.processors.KeyValueRenderer()],
                            cache_logger_on_first_use=True)  # fmt: skip
        try:
            logger = structlog.get_logger("cached")
            logger.info("before")  # caches the assembled logger
            with capture_logs() as logs:
                logger.info("during", n=1)
            assert logs == [{"event": "during", "n": 1, "log_level": "info"}]
        finally:
            structlog.configure(**saved)

    def test_leaves_the_processor_list_as_it_was(self) -> None:
        before = list(structlog.get_config()["processors"])
        with capture_logs():
            pass
        assert structlog.get_config()["processors"] == before


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HEXA_"))}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


class TestPlugin:
    def test_users_suite_gets_the_fixtures_from_the_entry_point(self, tmp_path: Path) -> None:
        shutil.copytree(REPO / "modules", tmp_path / "modules",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        (tmp_path / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
        (tmp_path / "test_user.py").write_text(
            textwrap.dedent("""
            from modules.invoicing.adapter.input.tasks.invoice import emit_invoice

            def test_emit(hexa_worker, hexa_logs):
                assert emit_invoice.send(5).get(timeout=10) == "Factura 5 emitida!"
                assert hexa_logs.named("task.succeeded")
        """)
        )
        done = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], tmp_path)
        assert "1 passed" in done.stdout, done.stdout + done.stderr

    def test_importing_the_plugin_changes_no_global_state(self, tmp_path: Path) -> None:
        probe = textwrap.dedent("""
            import celery._state, structlog, hexa._app
            def state():
                return (id(celery._state.default_app), hexa._app._current,
                        repr(structlog.get_config()), sorted(hexa.service_locator))
            import hexa
            before = state()
            import hexa.testing
            assert state() == before, (before, state())
            print("unchanged")
        """)
        done = _run([sys.executable, "-c", probe], tmp_path)
        assert done.stdout.strip() == "unchanged", done.stderr
