"""`hexa --help` reads well; CLI errors are one line, with a traceback only under --debug."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from celery.exceptions import TimeoutError as ResultTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError

from hexa._cli import parser
from hexa._cli_errors import explain
from hexa._cli_help import COMMANDS
from tests.support.worker import REPO

ENV_VARS = (
    "RABBITMQ_URL",
    "REDIS_URL",
    "HEXA_DEFAULT_QUEUE",
    "HEXA_LOG_FORMAT",
    "HEXA_PUBLISH_TIMEOUT",
)


def hexa(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    return subprocess.run([sys.executable, "-m", "hexa", *args], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def assert_one_line_error(done: subprocess.CompletedProcess[str], *parts: str) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("hexa: error: ")
    for part in parts:
        assert part in lines[0]
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "modules", tmp_path / "modules",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return tmp_path


class TestHelp:
    def test_root_help_lists_every_environment_variable_and_examples(self) -> None:
        text = parser().format_help()
        for name in ENV_VARS:
            assert name in text
        assert "examples:" in text
        assert "celery -A hexa.celery_app" in text

    def test_every_command_has_a_description(self) -> None:
        root = parser()
        commands = next(a for a in root._actions if hasattr(a, "choices") and a.choices)
        assert commands.choices
        for name, command in commands.choices.items():
            assert command.description, name
            if name in COMMANDS and name != "celery-apps":
                assert "example" in command.format_help(), name


class TestErrors:
    def test_unknown_task_in_send_names_the_closest(self, project: Path) -> None:
        done = hexa(project, "send", "invoicing.emit_invoic")
        line = assert_one_line_error(done, "unknown task 'invoicing.emit_invoic'")
        assert "did you mean 'invoicing.emit_invoice'" in line
        assert done.stdout == ""  # no task id: nothing was published

    def test_broken_module_names_its_path(self, project: Path) -> None:
        broken = project / "modules" / "broken"
        broken.mkdir()
        (broken / "__init__.py").write_text("")
        (broken / "module.py").write_text("from hexa import Module\nclass Broken(Module:\n")
        done = hexa(project, "tasks")
        assert_one_line_error(done, str(broken / "module.py"), "SyntaxError")

    def test_no_modules_package_says_where_to_run(self, tmp_path: Path) -> None:
        done = hexa(tmp_path, "tasks")
        assert_one_line_error(done, "no 'modules' package", "project's root")
        assert "Traceback" not in done.stderr

    def test_debug_shows_the_traceback(self, tmp_path: Path) -> None:
        done = hexa(tmp_path, "--debug", "tasks")
        assert done.returncode != 0
        assert "Traceback" in done.stderr
        assert "DiscoveryError" in done.stderr

    def test_unreachable_broker_is_named_with_its_password_masked(self, project: Path) -> None:
        done = hexa(project, "send", "invoicing.emit_invoice",
                    RABBITMQ_URL="amqp://user:s3cret@127.0.0.1:1//",
                    HEXA_PUBLISH_TIMEOUT="1")  # fmt: skip
        line = assert_one_line_error(done, "invoicing.emit_invoice", "amqp://user:**@127.0.0.1:1//")
        assert "RabbitMQ" in line  # what to check
        assert "s3cret" not in done.stderr + done.stdout


class TestExplain:
    def test_result_timeout_points_at_workers_and_status(self) -> None:
        line = explain(ResultTimeoutError("The operation timed out."))
        assert "is a worker consuming" in line
        assert "hexa status TASK_ID" in line

    def test_unreachable_backend_is_named_masked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REDIS_URL", "redis://:pw123@cache:6379/0")
        line = explain(RedisConnectionError("Error 111 connecting.\nConnection refused."))
        assert line.startswith("cannot reach the result backend (redis://:**@cache:6379/0)")
        assert "pw123" not in line
        assert "\n" not in line

    def test_anything_else_names_its_type_and_debug(self) -> None:
        assert explain(LookupError("boom")) == (
            "LookupError: boom (run 'hexa --debug ...' for the traceback)"
        )
