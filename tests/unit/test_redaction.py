"""No broker or backend password in log lines, stored failures or task events."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import structlog

import hexa
from hexa._app import build_app
from hexa._logging import configure_logging, get_logger
from hexa._settings import redact_known
from hexa._task_events import RedactingDispatcher

PASSWORD = "Sup3r-S3cret-pw"
URL = f"amqp://user:{PASSWORD}@rabbit:5672//"


@pytest.fixture
def settings(tmp_path: Path) -> hexa.Settings:
    """Embedded results, and a broker URL with a password: it is now a known secret."""
    found = attrs.evolve(hexa.Settings.from_env(environ={}, cwd=tmp_path), broker_url=URL)
    found.make_dirs()
    return found


class TestKnownSecrets:
    def test_every_settings_made_registers_its_passwords(self, settings: hexa.Settings) -> None:
        assert redact_known(f"cannot reach {URL}") == "cannot reach amqp://user:**@rabbit:5672//"

    def test_each_url_of_a_failover_list_counts(self) -> None:
        hexa.Settings.from_env(
            environ={"RABBITMQ_URL": "amqp://a:first1@h1//;amqp://a:second2@h2//"}
        )
        assert redact_known("first1 second2") == "** **"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Logging as it was before the test configured hexa's."""
    names = ("", "celery.app.trace", "celery.worker.strategy")
    saved = [(logging.getLogger(n), logging.getLogger(n).handlers[:]) for n in names]
    levels = [logger.level for logger, _ in saved]
    yield
    structlog.reset_defaults()
    for (logger, handlers), level in zip(saved, levels, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)


class TestLogLines:
    def test_structlog_events_and_foreign_tracebacks_are_redacted(
        self,
        settings: hexa.Settings,
        restore_logging: None,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        configure_logging("json")  # here: stderr is the captured one only inside the test
        get_logger().error("task.failed", error=f"ConnectionError: cannot reach {URL}")
        try:
            raise ConnectionError(f"cannot reach {URL}")
        except ConnectionError:
            logging.getLogger("celery.app.trace").exception("Task raised: %s", URL)
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 2
        assert all(PASSWORD not in line for line in lines)
        assert "Traceback" in json.loads(lines[1])["exception"]  # rendered inside the line


class TestStoredFailures:
    def test_a_failure_is_stored_without_the_password(self, settings: hexa.Settings) -> None:
        app = build_app(settings)
        try:
            app.backend.mark_as_failure(
                "t1", ConnectionError(f"cannot reach {URL}"), traceback=f"Traceback: {URL}"
            )
            meta = app.backend.get_task_meta("t1")
        finally:
            app.close()
        assert PASSWORD not in repr(meta)
        assert "cannot reach amqp://user:**@rabbit" in str(meta["result"])


class TestTaskEvents:
    def test_the_dispatcher_redacts_every_field(self, settings: hexa.Settings) -> None:
        app = build_app(settings)
        sent: list[dict[str, Any]] = []
        try:
            dispatcher = app.events.Dispatcher(enabled=False)
            assert isinstance(dispatcher, RedactingDispatcher)
            dispatcher.enabled = True  # publishing itself is replaced: no broker here
            dispatcher._publish = lambda event, *a, **k: sent.append(event)
            dispatcher.send("task-failed", exception=f"ValueError('{URL}')", traceback=URL)
        finally:
            app.close()
        assert sent
        assert PASSWORD not in repr(sent)
