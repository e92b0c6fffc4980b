"""`TaskResult.get()` that runs out of time says where it looked."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery.exceptions import TimeoutError as CeleryTimeoutError

from hexa import ResultTimeoutError, Settings, TaskResult, build_app


class TestResultTimeout:
    def test_a_timeout_names_the_broker_and_the_result_store(self, tmp_path: Path) -> None:
        settings = Settings.from_env(environ={}, cwd=tmp_path)  # the embedded default
        app = build_app(settings)
        try:
            result: TaskResult[int] = TaskResult("abc", app, task_name="m.t")
            with pytest.raises(ResultTimeoutError) as timed_out:
                result.get(timeout=0.05)
        finally:
            app.close()
        message = str(timed_out.value)
        assert message.startswith("no result for m.t (task id abc) within 0.05s, from broker ")
        assert f"embedded {settings.home / 'broker'}" in message
        assert f"result backend embedded {settings.home / 'results'}" in message
        assert isinstance(timed_out.value, CeleryTimeoutError)  # what Celery code catches

    def test_passwords_are_masked(self) -> None:
        settings = Settings.from_env(
            environ={
                "RABBITMQ_URL": "amqp://u:s3cret@127.0.0.1:1//",
                "REDIS_URL": "cache+memory://",
            }
        )
        app = build_app(settings)
        try:
            with pytest.raises(ResultTimeoutError) as timed_out:
                TaskResult("abc", app).get(timeout=0.05)
        finally:
            app.close()
        assert "amqp://u:**@127.0.0.1:1//" in str(timed_out.value)
        assert "s3cret" not in str(timed_out.value)
