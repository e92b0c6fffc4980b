"""The publish path's decisions that need no broker: what is stored, cached and subscribed."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from celery import Celery
from celery.backends.base import DisabledBackend
from celery.backends.redis import RedisBackend
from celery.backends.rpc import RPCBackend

from hexa import ResultNotStoredError, TaskResult
from hexa._publisher import Publisher, _needs_task_call_hook, publisher, stores_result


def returns_none() -> None: ...
def returns_int() -> int: ...
def unannotated(): ...  # type: ignore[no-untyped-def]


@pytest.fixture
def app() -> Any:
    app = Celery("dispatch-unit", broker="memory://", backend="cache+memory://")
    app.conf.task_default_queue = "unit-default"
    yield app
    app.close()


class TestStoresResult:
    @pytest.mark.parametrize(
        ("func", "stored"), [(returns_none, False), (returns_int, True), (unannotated, True)]
    )
    def test_only_none_annotation_skips_the_result(self, func: Any, stored: bool) -> None:
        assert stores_result(inspect.signature(func)) is stored

    def test_string_annotation_none_counts(self) -> None:
        sig = inspect.Signature(return_annotation="None")
        assert stores_result(sig) is False


class TestTaskCallHook:
    def test_redis_subscribes_on_demand_instead(self) -> None:
        backend = RedisBackend(app=Celery(set_as_current=False), url="redis://127.0.0.1:1/0")
        assert _needs_task_call_hook(backend) is False

    def test_backend_without_hook_is_skipped(self) -> None:
        assert _needs_task_call_hook(DisabledBackend(app=Celery(set_as_current=False))) is False

    def test_rpc_backend_keeps_its_reply_queue_hook(self) -> None:
        assert _needs_task_call_hook(RPCBackend(app=Celery(set_as_current=False))) is True


class TestRouting:
    def test_route_is_worked_out_once_per_task_and_queue(self, app: Any) -> None:
        found = Publisher(app)
        first = found.route("m.t", None, (), {})
        assert found.route("m.t", None, (1,), {}) is first
        assert first["queue"].name == "unit-default"
        other = found.route("m.t", "elsewhere", (), {})
        assert other["queue"].name == "elsewhere"

    def test_router_function_is_asked_every_time(self, app: Any) -> None:
        seen: list[tuple[Any, ...]] = []

        def route(name: str, args: tuple[Any, ...], kwargs: Any, options: Any, **_: Any) -> Any:
            seen.append(args)
            return {"queue": f"q{args[0]}"}

        app.conf.task_routes = (route,)
        found = Publisher(app)
        assert found.route("m.t", None, (1,), {})["queue"].name == "q1"
        assert found.route("m.t", None, (2,), {})["queue"].name == "q2"
        assert seen == [(1,), (2,)]

    def test_one_publisher_per_app(self, app: Any) -> None:
        assert publisher(app) is publisher(app)


class TestTaskResult:
    def test_not_stored_says_so_at_once(self, app: Any) -> None:
        result: TaskResult[None] = TaskResult("abc", app, task_name="m.t", stored=False)
        with pytest.raises(ResultNotStoredError, match=r"m\.t \(task id abc\).*-> None"):
            result.get(timeout=0.01)
        assert "no result stored" in repr(result)

    def test_handle_is_lazy(self, app: Any) -> None:
        result: TaskResult[int] = TaskResult("abc", app, task_name="m.t")
        assert result._async_result is None  # nothing subscribed or created on publish
        assert result.celery_result.id == "abc"
        assert result.status == "PENDING"


class TestDelayedMessages:
    def test_a_stored_message_with_an_eta_is_sent_by_celerys_path_not_pipelined(
        self, monkeypatch: Any, tmp_path: Any
    ) -> None:
        """The outbox relay sends stored messages with `_send_confirmed`: one with an `eta`
        must reach `DelayingAMQP` (the delay queues), not go straight to its queue."""
        from datetime import timedelta

        from hexa._app import build_app
        from hexa._settings import Settings

        environ = {"RABBITMQ_URL": "amqp://127.0.0.1:1//"}
        app = build_app(Settings.from_env(environ=environ, cwd=tmp_path))
        publisher = Publisher(app)
        publisher._pipelined = True
        ways: list[str] = []
        monkeypatch.setattr(publisher, "_send_pipelined", lambda *a: ways.append("pipelined"))
        monkeypatch.setattr(publisher, "_send_with_kombu", lambda *a: ways.append("celery"))
        route = dict(publisher.route("m.t", None, (), {}))
        eta = app.now() + timedelta(hours=2)
        for when in (None, eta):
            message = app.amqp.create_task_message("id", "m.t", [], {}, eta=when)
            publisher._send_confirmed("m.t", "id", message, route, True)
        assert ways == ["pipelined", "celery"]
        app.close()

    def test_a_delayed_message_on_rabbitmq_goes_through_celerys_send_task(
        self, monkeypatch: Any, tmp_path: Any
    ) -> None:
        """Where `DelayingAMQP` routes it to the broker's delay queues (hexa._delays)."""
        from celery.result import AsyncResult

        from hexa._app import build_app
        from hexa._options import SendOptions
        from hexa._settings import Settings

        environ = {"RABBITMQ_URL": "amqp://127.0.0.1:1//", "HEXA_QUEUE_TYPE": "quorum"}
        app = build_app(Settings.from_env(environ=environ, cwd=tmp_path))
        sent: list[dict[str, Any]] = []

        def send_task(name: str, args: Any, kwargs: Any, **options: Any) -> Any:
            sent.append({"name": name, **options})
            return AsyncResult("delayed-id", app=app)

        monkeypatch.setattr(app, "send_task", send_task)
        result = Publisher(app).publish("m.t", (1,), {}, SendOptions(countdown=5), "q", True)
        assert result.id == "delayed-id"
        assert len(sent) == 1
        wanted = {"name": "m.t", "countdown": 5, "queue": "q", "ignore_result": False}
        assert wanted.items() <= sent[0].items()
        app.close()
