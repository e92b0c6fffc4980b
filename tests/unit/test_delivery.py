"""Queue types, the delivery limit and delays: settings, checks and arithmetic (no broker)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from kombu.message import Message

import hexa
from hexa import ConfigurationError, DispatchError, Settings
from hexa._app import HexaCelery, build_app
from hexa._definitions import definitions
from hexa._delays import (
    DELIVERY_EXCHANGE,
    MAX_DELAY,
    MAX_HELD_DELAY,
    TOP_LEVEL,
    check_delay,
    delivery_binding,
    on_broker,
    queue_of,
)
from hexa._delivery_limit import COUNT_HEADER, failed_deliveries, limit_reason, needs_counting
from hexa._queues import plain_queue, queue_mismatch
from hexa._tasks_service import TasksService

BITS_6 = "0." * 25 + "1.1.0."  # six seconds, as kombu writes a delayed routing key


def embedded(tmp_path: Path) -> Settings:
    return Settings.from_env(environ={}, cwd=tmp_path)


def rabbitmq(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env(
        environ={"RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672//", **env}, cwd=tmp_path
    )


class TestSettings:
    def test_classic_queues_and_a_limit_of_5_by_default(self, tmp_path: Path) -> None:
        settings = rabbitmq(tmp_path)
        assert (settings.queue_type, settings.delivery_limit) == ("classic", 5)
        assert settings.delays_on_broker
        assert not embedded(tmp_path).delays_on_broker

    def test_quorum_is_read_from_hexa_queue_type(self, tmp_path: Path) -> None:
        settings = rabbitmq(tmp_path, HEXA_QUEUE_TYPE="Quorum ", HEXA_DELIVERY_LIMIT="3")
        assert (settings.queue_type, settings.delivery_limit) == ("quorum", 3)

    @pytest.mark.parametrize(
        ("env", "match"),
        [
            ({"HEXA_QUEUE_TYPE": "stream"}, r"HEXA_QUEUE_TYPE='stream': use 'classic' .* 'quorum'"),
            ({"HEXA_DELIVERY_LIMIT": "0"}, r"HEXA_DELIVERY_LIMIT='0': use a whole number .*1 up"),
            ({"HEXA_DELIVERY_LIMIT": "many"}, r"HEXA_DELIVERY_LIMIT='many'"),
        ],
    )
    def test_a_bad_value_is_refused_naming_the_variable_and_the_fix(
        self, tmp_path: Path, env: dict[str, str], match: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=match):
            rabbitmq(tmp_path, **env)

    def test_only_amqp_urls_keep_delays_on_the_broker(self, tmp_path: Path) -> None:
        settings = rabbitmq(tmp_path)
        for url, on_broker_ in [
            ("amqps://u:p@h//", True),
            ("amqp://h1//;amqp://h2//", True),
            ("redis://h/0", False),
            ("filesystem://localhost/", False),
        ]:
            assert attrs.evolve(settings, broker_url=url).delays_on_broker is on_broker_, url


class TestQueueDeclarations:
    def test_quorum_settings_declare_task_and_dead_queues_as_quorum(self, tmp_path: Path) -> None:
        settings = rabbitmq(tmp_path, HEXA_QUEUE_TYPE="quorum", HEXA_DEFAULT_QUEUE="jobs")
        app = build_app(settings)
        try:
            assert app.amqp.queues["jobs"].queue_arguments == {"x-queue-type": "quorum"}
            routed = app.amqp.queues["reports"]  # a task's own queue= is created on demand
            assert routed.queue_arguments == {"x-queue-type": "quorum"}
            assert hexa.DeadLetterStore(settings).queue.queue_arguments == {
                "x-queue-type": "quorum"
            }
            assert app.conf.worker_detect_quorum_queues
        finally:
            app.close()

    def test_classic_settings_add_no_queue_arguments(self, tmp_path: Path) -> None:
        settings = rabbitmq(tmp_path)
        app = build_app(settings)
        try:
            assert not app.amqp.queues[settings.default_queue].queue_arguments
            assert not plain_queue("celery.dead", settings).queue_arguments
        finally:
            app.close()

    @pytest.mark.parametrize(
        ("broker_text", "existing", "wanted"),
        [
            (
                "received the value 'quorum' of type 'longstr' but current is none",
                "classic",
                "quorum",
            ),
            (
                "received none but current is the value 'quorum' of type 'longstr'",
                "quorum",
                "classic",
            ),
        ],
    )
    def test_a_queue_of_another_type_is_reported_with_the_fix(
        self, broker_text: str, existing: str, wanted: str
    ) -> None:
        error = Exception(
            "Queue.declare: (406) PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for "
            f"queue 'jobs' in vhost '/': {broker_text}"
        )
        found = queue_mismatch(error)
        assert isinstance(found, ConfigurationError)
        text = str(found)
        assert f"queue 'jobs' exists on the broker as a {existing} queue" in text
        assert f"declares it as a {wanted} queue (HEXA_QUEUE_TYPE={wanted})" in text
        assert f"set HEXA_QUEUE_TYPE={existing}" in text
        assert "rabbitmqctl delete_queue jobs" in text

    def test_other_broker_errors_are_not_taken_for_a_mismatch(self) -> None:
        assert queue_mismatch(Exception("NOT_FOUND - no exchange 'x'")) is None


def message(headers: dict[str, Any], redelivered: bool) -> Message:
    return Message(
        body=b"[]",
        headers=headers,
        delivery_info={"redelivered": redelivered, "routing_key": "jobs"},
        content_type="application/json",
    )


class TestDeliveryCount:
    def test_a_first_delivery_has_no_failed_delivery(self) -> None:
        assert failed_deliveries(message({}, redelivered=False)) == 0

    def test_a_classic_redelivery_adds_one_to_the_count_it_carries(self) -> None:
        assert failed_deliveries(message({}, redelivered=True)) == 1
        assert failed_deliveries(message({COUNT_HEADER: 3}, redelivered=True)) == 4
        assert failed_deliveries(message({COUNT_HEADER: 3}, redelivered=False)) == 3

    def test_a_quorum_queue_counts_for_us(self) -> None:
        assert failed_deliveries(message({"x-delivery-count": 4}, redelivered=True)) == 4

    @pytest.mark.parametrize("value", ["9", -2, True, 2.5, None, [1]])
    def test_a_count_of_the_wrong_shape_counts_nothing(self, value: object) -> None:
        assert failed_deliveries(message({COUNT_HEADER: value}, redelivered=False)) == 0

    def test_only_redelivered_messages_on_classic_queues_are_counted_by_republishing(
        self, tmp_path: Path
    ) -> None:
        classic = rabbitmq(tmp_path)
        quorum = attrs.evolve(classic, queue_type="quorum")
        assert needs_counting(message({}, redelivered=True), classic)
        assert not needs_counting(message({}, redelivered=False), classic)
        assert not needs_counting(message({}, redelivered=True), quorum)

    def test_the_reason_says_how_often_and_the_setting(self, tmp_path: Path) -> None:
        reason = limit_reason(5, rabbitmq(tmp_path))
        assert reason.startswith("delivered 5 times without finishing (HEXA_DELIVERY_LIMIT=5)")


class TestDelayRouting:
    def test_the_queue_of_a_delayed_routing_key_is_its_last_words(self) -> None:
        assert queue_of(BITS_6 + "jobs") == "jobs"
        assert queue_of(BITS_6 + "a.b.c") == "a.b.c"
        assert queue_of("jobs") == "jobs"
        assert queue_of("1.0.jobs") == "1.0.jobs"  # not 28 bits: a queue's own name

    def test_a_queue_is_bound_by_exactly_28_bits_and_its_name(self) -> None:
        assert delivery_binding("jobs") == "*." * 28 + "jobs"

    @pytest.fixture
    def app(self, tmp_path: Path) -> Iterator[HexaCelery]:
        made = build_app(rabbitmq(tmp_path, HEXA_DEFAULT_QUEUE="jobs"))
        yield made
        made.close()

    @staticmethod
    def producer() -> Any:
        declared: list[tuple[str, ...]] = []

        class Channel:
            def __getattr__(self, name: str) -> Callable[..., None]:
                return lambda *args, **kwargs: declared.append((name, *map(str, args)))

        class Connection:
            declared_entities: set[Any] = set()

        return attrs.make_class("Producer", ["channel", "connection", "declared"])(
            Channel(), Connection(), declared
        )

    def test_a_message_due_in_6s_goes_to_the_top_level_with_the_bits_of_6(
        self, app: HexaCelery
    ) -> None:
        eta = (app.now() + timedelta(seconds=6.5)).isoformat()
        producer = self.producer()
        queue = app.amqp.queues["jobs"]
        options = {"queue": queue, "routing_key": "jobs", "expiration": 30.0}
        routed = on_broker(app.amqp, producer, ({"eta": eta}, {}, None, None), options)
        assert routed["exchange"] == TOP_LEVEL == "celery_delayed_27"
        assert routed["routing_key"] == BITS_6 + "jobs"
        assert routed["queue"] is None
        assert routed["declare"] == []
        assert "expiration" not in routed  # a TTL would let it out of a delay level early
        binds = [call for call in producer.declared if call[0] == "queue_bind"]
        assert ("queue_bind", "jobs", DELIVERY_EXCHANGE, delivery_binding("jobs")) in binds

    def test_a_message_due_now_goes_straight_to_its_queue(self, app: HexaCelery) -> None:
        producer = self.producer()
        options = {"queue": app.amqp.queues["jobs"], "routing_key": "jobs"}
        assert on_broker(app.amqp, producer, ({"eta": None}, {}, None, None), options) == options
        assert producer.declared == []

    def test_a_retry_of_a_delayed_message_finds_its_queue_again(self, app: HexaCelery) -> None:
        options = {"exchange": DELIVERY_EXCHANGE, "routing_key": BITS_6 + "jobs"}
        routed = on_broker(app.amqp, self.producer(), ({}, {}, None, None), options)
        assert (routed["exchange"], routed["routing_key"]) == ("", "jobs")


class TestDelayChecks:
    def test_on_rabbitmq_days_are_fine_and_only_past_8_years_is_refused(
        self, tmp_path: Path
    ) -> None:
        settings = rabbitmq(tmp_path)
        check_delay("t.x", 86400 * 30, None, settings)
        check_delay("t.x", None, datetime.now(UTC) + timedelta(days=2), settings)
        with pytest.raises(DispatchError, match=r"longer than RabbitMQ's delay topology"):
            check_delay("t.x", MAX_DELAY + 1, None, settings)

    def test_elsewhere_a_delay_past_1740s_is_refused_with_the_reason_and_the_limit(
        self, tmp_path: Path
    ) -> None:
        settings = embedded(tmp_path)
        check_delay("t.x", MAX_HELD_DELAY, None, settings)
        with pytest.raises(
            DispatchError,
            match=r"t\.x: countdown=3600s is longer than 1740s: .*held unacknowledged by a "
            r"worker.*consumer_timeout.*RABBITMQ_URL=amqp://",
        ):
            check_delay("t.x", 3600, None, settings)
        with pytest.raises(DispatchError, match=r"eta=.* \(720[01]s\) is longer than 1740s"):
            check_delay("t.x", None, datetime.now(UTC) + timedelta(seconds=7201), settings)


def _nothing_published(app: HexaCelery) -> bool:
    folder = Path(str(app.hexa_settings.broker_transport_options["data_folder_in"]))
    return not any(folder.iterdir())


class TestRefusedBeforePublishingOnTheEmbeddedBroker:
    """Issue 11 item 2: every way to send a delay is checked, not only retry policies."""

    @pytest.fixture
    def app(self, tmp_path: Path) -> Iterator[HexaCelery]:
        made = build_app(embedded(tmp_path))
        previous = hexa.use_app(made)
        yield made
        hexa.use_app(previous)
        made.close()

    def test_with_options_countdown(self, app: HexaCelery) -> None:
        @hexa.module_task(module="later")
        def run(x: int) -> int:
            return x

        with pytest.raises(DispatchError, match=r"later\.run: countdown=3600s .*1740s"):
            run.with_options(countdown=3600).send(1)
        with pytest.raises(DispatchError, match=r"later\.run: eta="):
            run.with_options(eta=datetime.now(UTC) + timedelta(hours=2)).send(1)
        assert _nothing_published(app)

    def test_send_task_countdown(self, app: HexaCelery) -> None:
        def run(x: int) -> int:
            return x

        service = TasksService(definitions({"later_tasks": {"run": run}}))
        with pytest.raises(DispatchError, match=r"later\.run: countdown=86400s"):
            service.send_task("later.run", args=[1], countdown=86400)
        assert _nothing_published(app)

    def test_a_workflow_whose_start_waits_too_long(self, app: HexaCelery) -> None:
        @hexa.module_task(module="later")
        def step(x: int) -> int:
            return x

        with pytest.raises(DispatchError, match=r"later\.step: countdown=3600s"):
            step.s(1).then(step).with_options(countdown=3600).send()
        assert _nothing_published(app)

    def test_hexa_send_countdown(self, tmp_path: Path) -> None:
        module = tmp_path / "modules" / "later"
        module.mkdir(parents=True)
        (tmp_path / "modules" / "__init__.py").write_text("")
        (module / "__init__.py").write_text("")
        (module / "module.py").write_text(
            "from hexa import Module\n\ndef run(x: int) -> int:\n    return x\n\n"
            "class LaterModule(Module):\n    @property\n    def service(self):\n"
            "        return {'later_tasks': {'run': run}}\n"
        )
        env = {k: v for k, v in os.environ.items() if k not in ("RABBITMQ_URL", "REDIS_URL")}
        done = subprocess.run(
            [sys.executable, "-m", "hexa", "send", "later.run", "1", "--countdown", "3600"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "later.run: countdown=3600s is longer than 1740s" in done.stderr
        assert not any((tmp_path / ".hexa" / "broker" / "queue").glob("*"))
