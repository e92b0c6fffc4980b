"""Messages from templates are byte for byte what Celery's message building and py-amqp write."""

from __future__ import annotations

import types
from typing import Any

import pytest
from amqp import spec
from amqp.method_framing import frame_writer
from amqp.serialization import dumps
from celery import Celery, signals

from hexa._frames import frames
from hexa._options import SendOptions
from hexa._publisher import Publisher

NAME = "billing.emit_invoice"
TASK_ID = "0b6c8a0e-6d0f-4a39-9a55-5f1d1bb2b7d1"


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> Any:
    # Receivers left connected by other tests (tracing) would send every call through Celery.
    monkeypatch.setattr(signals.before_task_publish, "receivers", [])
    monkeypatch.setattr(signals.after_task_publish, "receivers", [])
    app = Celery("frames-unit", broker="amqp://guest@127.0.0.1:5672//", backend="disabled://")
    app.conf.update(
        task_serializer="json",
        task_default_queue="frames-unit",
        broker_transport_options={"confirm_publish": True},
    )
    yield Publisher(app)
    app.close()


class Captured:
    """py-amqp's frame writer on a connection that only records the bytes."""

    def __init__(self, frame_max: int) -> None:
        self.frame_max, self.bytes_sent, self.data = frame_max, 0, b""
        self.frames = frame_writer(self, self)

    def __call__(self, sent: Any) -> bytes:
        args = dumps("Bssbb", (0, sent.exchange, sent.routing_key, False, False))
        self.frames(1, 1, spec.Basic.Publish, args, sent.message)
        return self.data

    def write(self, data: Any) -> None:  # the transport's write
        self.data += bytes(data)


def as_celery_would(pub: Publisher, args: Any, kwargs: Any, parent: Any, stored: bool) -> Any:
    options = SendOptions()
    route = pub._delivery(NAME, args, kwargs, options, None, parent)
    message = pub._message(TASK_ID, NAME, args, kwargs, options, parent, stored)
    return pub._wire.outgoing(NAME, message, route)


def worker_task(root_id: str | None) -> Any:
    request = types.SimpleNamespace(
        id="5d7e1c7a-0000-4000-8000-000000000001", root_id=root_id, delivery_info={}
    )
    return types.SimpleNamespace(request=request)


CALLS = [
    ((), {}),
    ((42, "ünïcode ☃", None, 1.5, True), {"when": "2026-12-02", "items": [1, {"a": [2]}]}),
    (("x" * 300,), {"note": "long enough for saferepr to shorten the repr"}),
]


class TestTemplates:
    @pytest.mark.parametrize(("args", "kwargs"), CALLS)
    @pytest.mark.parametrize("stored", [True, False])
    def test_same_bytes_as_celery_and_py_amqp(
        self, publisher: Publisher, args: Any, kwargs: Any, stored: bool
    ) -> None:
        sent = publisher._framed(TASK_ID, NAME, args, kwargs, SendOptions(), None, None, stored)
        assert sent is not None
        expected = Captured(131072)(as_celery_would(publisher, args, kwargs, None, stored))
        assert frames(1, 131072, sent.method, sent.header, sent.body) == expected

    @pytest.mark.parametrize("root_id", [None, "1f0e2d3c-0000-4000-8000-000000000009"])
    def test_sent_from_a_task_carries_its_root_and_parent(
        self, publisher: Publisher, root_id: str | None
    ) -> None:
        parent = worker_task(root_id)
        sent = publisher._framed(TASK_ID, NAME, (1,), {}, SendOptions(), None, parent, True)
        assert sent is not None
        expected = Captured(131072)(as_celery_would(publisher, (1,), {}, parent, True))
        assert frames(1, 131072, sent.method, sent.header, sent.body) == expected

    def test_a_body_larger_than_a_frame_is_split_as_py_amqp_splits_it(
        self, publisher: Publisher
    ) -> None:
        args = ("y" * 10_000,)
        sent = publisher._framed(TASK_ID, NAME, args, {}, SendOptions(), None, None, True)
        assert sent is not None
        expected = Captured(4096)(as_celery_would(publisher, args, {}, None, True))
        assert frames(1, 4096, sent.method, sent.header, sent.body) == expected

    @pytest.mark.parametrize(
        "options",
        [
            SendOptions(countdown=5),
            SendOptions(expires=60),
            SendOptions(priority=3),
        ],
    )
    def test_delays_expiry_and_priority_go_through_celery(
        self, publisher: Publisher, options: SendOptions
    ) -> None:
        assert publisher._framed(TASK_ID, NAME, (), {}, options, None, None, True) is None

    def test_a_before_publish_receiver_gets_celerys_message(self, publisher: Publisher) -> None:
        def receiver(**_: Any) -> None: ...

        signals.before_task_publish.connect(receiver)
        try:
            framed = publisher._framed(TASK_ID, NAME, (), {}, SendOptions(), None, None, True)
            assert framed is None
        finally:
            signals.before_task_publish.disconnect(receiver)
        assert publisher._framed(TASK_ID, NAME, (), {}, SendOptions(), None, None, True)

    def test_an_inherited_priority_goes_through_celery(self, publisher: Publisher) -> None:
        parent = worker_task(None)
        parent.request.delivery_info = {"priority": 7}
        assert publisher._framed(TASK_ID, NAME, (), {}, SendOptions(), None, parent, True)
        publisher.app.conf.task_inherit_parent_priority = True
        inheriting = Publisher(publisher.app)
        assert inheriting._framed(TASK_ID, NAME, (), {}, SendOptions(), None, parent, True) is None
