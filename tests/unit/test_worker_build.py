"""`create_celery_worker`: definitions become tasks of one configured Celery app."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from hexa import (
    Backoff,
    DuplicateTaskError,
    ServiceLocator,
    Settings,
    create_celery_worker,
    module_task,
    use_app,
)
from hexa._definitions import definitions
from hexa._worker import entry_point, register_task, task_line


def add(a: int, b: int = 1) -> int:
    return a + b


async def fetch(url: str, retries: int = 0) -> str:
    return url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(environ={}, cwd=tmp_path)


def build(services: dict[str, object], settings: Settings):  # type: ignore[no-untyped-def]
    locator = ServiceLocator()
    for name, value in services.items():
        locator.register(name, value)
    app = create_celery_worker(locator, settings)
    use_app(None)
    return app


class TestCreateCeleryWorker:
    def test_tasks_are_registered_by_full_name(self, settings: Settings) -> None:
        app = build({"m_tasks": {"add": add, "fetch": fetch}, "other": object}, settings)
        assert {"m.add", "m.fetch"} <= set(app.tasks)
        assert app.tasks["m.add"](1, 2) == 3  # the plain function runs in-process

    def test_careful_defaults(self, settings: Settings) -> None:
        conf = build({}, settings).conf
        assert conf.accept_content == ["json"]
        assert conf.task_serializer == "json"
        assert conf.task_acks_late
        assert conf.task_reject_on_worker_lost
        # Celery's own prefetch: unacknowledged messages are redelivered if the worker dies.
        assert conf.worker_prefetch_multiplier == 4
        assert conf.broker_connection_retry_on_startup
        # Task events off until Flower or `celery control enable_events` asks, as in Celery.
        assert conf.worker_send_task_events is False

    def test_retry_policy_becomes_celery_options(self, settings: Settings) -> None:
        task = module_task(module="m", retry=Backoff(max_retries=4, max=60))(add)
        app = build({"m_tasks": {"add": {"task": task, "config": task.spec.config()}}}, settings)
        celery_task = app.tasks["m.add"]
        assert celery_task.autoretry_for == (Exception,)
        assert celery_task.retry_kwargs == {"max_retries": 4}
        assert celery_task.retry_backoff_max == 60

    def test_queue_compiles_to_task_routes(self, settings: Settings) -> None:
        app = build({"m_tasks": {"add": {"task": add, "config": {"queue": "slow"}}}}, settings)
        assert app.conf.task_routes == {"m.add": {"queue": "slow"}}
        assert getattr(app.tasks["m.add"], "queue", None) is None

    def test_sync_timeout_uses_celery_time_limits(self, settings: Settings) -> None:
        app = build({"m_tasks": {"add": {"task": add, "config": {"timeout": 3}}}}, settings)
        assert app.tasks["m.add"].soft_time_limit == 3
        assert app.tasks["m.add"].time_limit > 3

    def test_schedule_fills_beat_schedule(self, settings: Settings) -> None:
        def tick() -> None: ...

        app = build({"m_tasks": {"tick": {"task": tick, "config": {"schedule": 5.0}}}}, settings)
        assert app.conf.beat_schedule == {"m.tick": {"task": "m.tick", "schedule": 5.0}}

    def test_name_taken_in_the_app_is_an_error(self, settings: Settings) -> None:
        locator = ServiceLocator()
        locator.register("m_tasks", {"add": add})
        app = create_celery_worker(locator, settings)
        use_app(None)
        with pytest.raises(DuplicateTaskError, match=r"'m\.add'"):
            register_task(app, definitions({"m_tasks": {"add": fetch}})[0])


class TestEntryPoint:
    def test_sync_function_is_registered_as_is(self) -> None:
        (found,) = definitions({"m_tasks": {"add": add}})
        assert entry_point(found) is add

    def test_async_wrapper_keeps_the_real_signature(self) -> None:
        (found,) = definitions({"m_tasks": {"fetch": fetch}})
        wrapper = entry_point(found)
        assert inspect.signature(wrapper) == inspect.signature(fetch)
        assert inspect.getfullargspec(wrapper).args == ["url", "retries"]  # what Celery reads
        assert wrapper("u") == "u"

    def test_task_line_marks_async_and_retry(self) -> None:
        config = {"autoretry_for": (OSError,), "max_retries": 2, "default_retry_delay": 7}
        (found,) = definitions({"m_tasks": {"fetch": {"task": fetch, "config": config}}})
        assert task_line(found) == "m.fetch [async]  (retry 2x on OSError: every 7s)"
