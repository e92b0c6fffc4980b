"""The message check: every message Celery writes passes, every malformed field is named."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery, chain, chord, group, signals
from kombu.message import Message

from hexa._message_check import MalformedMessage, check_message, identity

Published = list[tuple[dict[str, Any], Any]]


def as_message(body: Any, headers: dict[str, Any], raw: bytes | None = None) -> Message:
    """A message as the worker's consumer receives it (JSON only accepted)."""
    return Message(
        body=json.dumps(body).encode() if raw is None else raw,
        content_type="application/json",
        content_encoding="utf-8",
        headers=headers,
        accept=["application/json"],
    )


@pytest.fixture(scope="module")
def celery_app() -> Iterator[Celery]:
    app = Celery("check", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.task_protocol = 2

    @app.task(name="t.add", shared=False)
    def add(x: int, y: int = 0) -> int:
        return x + y

    @app.task(name="t.total", shared=False)
    def total(values: list[int]) -> int:
        return sum(values)

    yield app
    app.close()


@pytest.fixture
def published(celery_app: Celery) -> Iterator[Published]:
    """Every message `celery_app` publishes: (headers, body) as Celery made them."""
    seen: Published = []

    def record(body: Any = None, headers: Any = None, **_: Any) -> None:
        seen.append((dict(headers or {}), body))

    signals.before_task_publish.connect(record, weak=False, dispatch_uid="check.record")
    yield seen
    signals.before_task_publish.disconnect(dispatch_uid="check.record")


def canvases(app: Celery) -> dict[str, Callable[[], Any]]:
    add, total = app.tasks["t.add"], app.tasks["t.total"]
    return {
        "plain": lambda: add.apply_async((1, 2), countdown=1, expires=60, priority=3),
        "links": lambda: add.apply_async((1,), link=add.s(2), link_error=total.si([1])),
        "chain": lambda: chain(add.s(1, 1), add.s(2), add.s(3)).apply_async(),
        "group": lambda: group(add.s(i, i) for i in range(3)).apply_async(),
        "chord": lambda: chord((add.s(i, i) for i in range(3)), total.s()).apply_async(),
        "chain of group and chord": lambda: chain(
            add.s(1, 1), group(add.s(1), add.s(2)), total.s(), add.s(1)
        ).apply_async(),
        "time limits": lambda: add.apply_async((1,), time_limit=30, soft_time_limit=20),
        "shadow and retries": lambda: add.apply_async((1,), shadow="x", retries=2, eta=None),
    }


class TestMessagesCeleryWrites:
    @pytest.mark.parametrize(
        "canvas",
        [
            "plain",
            "links",
            "chain",
            "group",
            "chord",
            "chain of group and chord",
            "time limits",
            "shadow and retries",
        ],
    )
    def test_protocol_2_messages_of_every_canvas_pass(
        self, celery_app: Celery, published: Published, canvas: str
    ) -> None:
        canvases(celery_app)[canvas]()
        assert published, "nothing was published"
        for headers, body in published:
            check_message(as_message(body, headers))  # raises when it would refuse one

    def test_protocol_1_messages_pass(self, celery_app: Celery) -> None:
        made = celery_app.amqp.as_task_v1(
            "id-1",
            "t.add",
            args=(1,),
            kwargs={"y": 2},
            countdown=5,
            time_limit=9,
            callbacks=[celery_app.tasks["t.add"].s(1)],
        )
        check_message(as_message(made.body, made.headers or {}))


def v2(headers: dict[str, Any] | None = None, body: Any = None) -> Message:
    base = {"lang": "py", "task": "t.add", "id": "id-1", "retries": 0, "timelimit": [None, None]}
    return as_message([[1], {}, {}] if body is None else body, {**base, **(headers or {})})


def v1(**fields: Any) -> Message:
    return as_message({"task": "t.add", "id": "id-1", "args": [1], "kwargs": {}, **fields}, {})


MALFORMED: dict[str, tuple[Message, str]] = {
    "timelimit with text": (v2({"timelimit": [10, "x"]}), "header 'timelimit'"),
    "timelimit of a list and an object": (v2({"timelimit": ["a", {"b": 1}]}), "'timelimit'"),
    "timelimit of one number": (v2({"timelimit": [10]}), "'timelimit'"),
    "timelimit as text": (v2({"timelimit": "ab"}), "'timelimit'"),
    "timelimit of infinity": (v2({"timelimit": [float("inf"), None]}), "'timelimit'"),
    "negative timelimit": (v2({"timelimit": [-1, None]}), "'timelimit'"),
    "eta as a number": (v2({"eta": 5}), "header 'eta'"),
    "eta not a date": (v2({"eta": "2020-13-45T99:99:99"}), "header 'eta'"),
    "eta out of range": (v2({"eta": "0001-01-01T00:00:00+14:00"}), "header 'eta'"),
    "expires as a list": (v2({"expires": [1]}), "header 'expires'"),
    "retries as text": (v2({"retries": "1"}), "header 'retries'"),
    "retries huge": (v2({"retries": 10**12}), "header 'retries'"),
    "retries as a bool": (v2({"retries": True}), "header 'retries'"),
    "id as a list": (v2({"id": ["x"]}), "header 'id'"),
    "id missing": (as_message([[1], {}, {}], {"task": "t.add"}), "header 'id' is missing"),
    "task empty": (v2({"task": ""}), "header 'task'"),
    "id a lone surrogate": (v2({"id": "\udcff"}), "header 'id'"),
    "id too long": (v2({"id": "i" * 256}), "header 'id'"),
    "root_id as a number": (v2({"root_id": 5}), "header 'root_id'"),
    "parent_id as an object": (v2({"parent_id": {}}), "header 'parent_id'"),
    "group as a list": (v2({"group": [1]}), "header 'group'"),
    "group_index negative": (v2({"group_index": -1}), "header 'group_index'"),
    "argsrepr as a list": (v2({"argsrepr": [1]}), "header 'argsrepr'"),
    "ignore_result as text": (v2({"ignore_result": "yes"}), "header 'ignore_result'"),
    "stamped_headers as text": (v2({"stamped_headers": "abc"}), "'stamped_headers'"),
    "stamps as a list": (v2({"stamps": [1]}), "header 'stamps'"),
    "body not three items": (v2(body=[[1], {}]), "body must be [args, kwargs, embed]"),
    "body an object": (v2(body={"a": 1, "b": 2, "c": 3}), "body must be"),
    "args as text": (v2(body=["abc", {}, {}]), "body args"),
    "kwargs as a list": (v2(body=[[], [1], {}]), "body kwargs"),
    "embed as a list": (v2(body=[[], {}, [1]]), "third item"),
    "embed with other keys": (v2(body=[[], {}, {"delivery_info": 1}]), "third item"),
    "callbacks as text": (v2(body=[[], {}, {"callbacks": "x"}]), "body callbacks"),
    "callback without a task": (v2(body=[[], {}, {"callbacks": [{"args": []}]}]), "callbacks[0]"),
    "errback with bad options": (
        v2(body=[[], {}, {"errbacks": [{"task": "a", "options": {"priority": "x"}}]}]),
        "option 'priority'",
    ),
    "errback with a forbidden option": (
        v2(body=[[], {}, {"errbacks": [{"task": "a", "options": {"producer": 1}}]}]),
        "option 'producer'",
    ),
    "chain of numbers": (v2(body=[[], {}, {"chain": [1, 2]}]), "body chain[0]"),
    "chain as one signature": (v2(body=[[], {}, {"chain": {"task": "a"}}]), "body chain must"),
    "errbacks as one signature": (v2(body=[[], {}, {"errbacks": {"task": "a"}}]), "errbacks"),
    "chord as a list": (v2(body=[[], {}, {"chord": [{"task": "a"}]}]), "body chord"),
    "a chain option that is no list of signatures": (
        v2(body=[[], {}, {"chord": {"task": "a", "options": {"chain": "x"}}}]),
        "option 'chain'",
    ),
    "chord of unknown type": (
        v2(body=[[], {}, {"chord": {"task": "a", "subtask_type": "nope"}}]),
        "subtask_type",
    ),
    "group without tasks": (
        v2(body=[[], {}, {"callbacks": [{"task": "celery.group", "subtask_type": "group"}]}]),
        "tasks",
    ),
    "protocol 1 args as a number": (v1(args=5), "body field 'args'"),
    "protocol 1 kwargs as a list": (v1(kwargs=[1]), "body field 'kwargs'"),
    "protocol 1 timelimit": (v1(timelimit=[10, "x"]), "body field 'timelimit'"),
    "protocol 1 callbacks": (v1(callbacks=5), "body callbacks"),
    "protocol 1 without id": (as_message({"task": "t.add", "args": []}, {}), "'id' is missing"),
    "hybrid with bad retries": (
        as_message({"args": [1], "kwargs": {}, "retries": "x"}, {"task": "t.add", "id": "i"}),
        "'retries'",
    ),
}


class TestMalformedMessages:
    @pytest.mark.parametrize("case", sorted(MALFORMED))
    def test_each_malformed_field_is_named(self, case: str) -> None:
        message, named = MALFORMED[case]
        with pytest.raises(MalformedMessage, match=None) as caught:
            check_message(message)
        assert named in str(caught.value)

    def test_a_huge_value_is_quoted_short(self) -> None:
        with pytest.raises(MalformedMessage) as caught:
            check_message(v2({"retries": "9" * 100_000}))
        assert len(str(caught.value)) < 200

    def test_nesting_is_bounded(self) -> None:
        signature: dict[str, Any] = {"task": "a"}
        for _ in range(50):
            signature = {"task": "a", "options": {"link": signature}}
        with pytest.raises(MalformedMessage, match="deeper than"):
            check_message(v2(body=[[], {}, {"callbacks": [signature]}]))

    def test_the_rest_of_a_chain_may_ride_in_a_signatures_options(self) -> None:
        rest = [{"task": "t.add", "args": [1], "options": {"task_id": "x"}}]
        for rest_of_chain in ([], rest):
            body = {"task": "t.total", "options": {"chain": rest_of_chain}}
            check_message(v2(body=[[], {}, {"chord": body}]))

    def test_what_celery_refuses_itself_is_left_to_it(self) -> None:
        check_message(as_message(None, {}, raw=b"\x00 not json"))  # undecodable: Celery's
        check_message(as_message({"hello": 1}, {}))  # not a task message: Celery's
        check_message(as_message([[1], {}, {}], {"task": "nobody.knows", "id": "i"}))


class TestIdentity:
    def test_protocol_2_reads_the_headers(self) -> None:
        assert identity(v2()) == ("t.add", "id-1")

    def test_protocol_1_reads_the_body(self) -> None:
        assert identity(v1()) == ("t.add", "id-1")

    def test_values_that_are_not_names_are_dropped(self) -> None:
        assert identity(as_message({"task": ["x"], "id": 5}, {})) == (None, None)
        assert identity(as_message(None, {}, raw=b"\xff")) == (None, None)
