"""Several brokers in `RABBITMQ_URL`, and heartbeats on the publishing connection.

The real RabbitMQ stands for the one live node of a list whose other entries are ports
nothing listens on (a node that is down); the cluster suite (`make chaos`) stops real nodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery

import hexa
from hexa._app import build_app
from hexa._options import SendOptions
from hexa._publisher import publish, publisher
from tests.chaos.services import free_port
from tests.conftest import StartWorker

pytestmark = pytest.mark.integration


def down_node() -> str:
    return f"amqp://guest:guest@127.0.0.1:{free_port()}//"


def cluster_env(real_env: dict[str, str], rabbitmq_url: str) -> dict[str, str]:
    """The live broker second, after a node that is down, comma-separated."""
    return {**real_env, "RABBITMQ_URL": f"{down_node()},{rabbitmq_url}"}


class TestBrokerList:
    def test_a_client_publishes_on_the_node_that_answers(
        self, real_env: dict[str, str], rabbitmq_url: str, queue: str
    ) -> None:
        app = build_app(hexa.Settings.from_env(environ=cluster_env(real_env, rabbitmq_url)))
        try:
            for index in range(3):
                publish("broker_lists.add", [index, 1], {}, SendOptions(), app=app)
            channel = publisher(app).confirm_channel()
            conn = channel._conn
            assert conn is not None
            assert conn.port == int(rabbitmq_url.rsplit(":", 1)[1].split("/")[0])
        finally:
            app.close()

    def test_a_worker_runs_tasks_from_the_node_that_answers(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        rabbitmq_url: str,
        plain_client: Celery,
    ) -> None:
        worker = start_worker(project(), cluster_env(real_env, rabbitmq_url))
        assert plain_client.send_task("invoicing.emit_invoice").get(timeout=30) == (
            "Factura emitida!"
        )
        shown = worker.events("worker.connection")[0]["broker"]
        assert shown.count("@127.0.0.1:") == 2  # both nodes
        assert "guest@" not in shown
        assert ":guest" not in shown


class TestPublisherHeartbeats:
    def test_an_idle_publisher_keeps_its_connection_past_two_heartbeats(
        self, real_env: dict[str, str], queue: str
    ) -> None:
        """The broker closes a connection that misses two heartbeats: the driver sends them."""
        app = build_app(hexa.Settings.from_env(environ={**real_env, "HEXA_HEARTBEAT": "2"}))
        try:
            publish("broker_lists.add", [1, 1], {}, SendOptions(), app=app)
            channel = publisher(app).confirm_channel()
            first = channel._conn
            assert first is not None
            assert first.get_heartbeat_interval() == 2
            time.sleep(7)  # idle for more than three heartbeat intervals
            publish("broker_lists.add", [2, 2], {}, SendOptions(), app=app)
            assert channel._conn is first  # never dropped: the same connection published
        finally:
            app.close()
