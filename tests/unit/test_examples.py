"""The examples on hexa.testing's in-process worker: no server needed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hexa.testing import InProcessWorker
from tests.support.fresh import fresh_repo_modules
from tests.support.worker import REPO


@pytest.fixture
def hexa_modules() -> Iterator[str]:
    """The plugin's fixture, overridden: the example modules, imported afresh."""
    with fresh_repo_modules():
        yield "modules"


@pytest.fixture
def app(hexa_worker: InProcessWorker) -> FastAPI:
    from examples.fastapi_app import app

    return app


def poll(client: TestClient, task_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/tasks/{task_id}").json()
        if body["status"] in ("SUCCESS", "FAILURE"):
            break
        time.sleep(0.02)
    return body


class TestFastAPIExample:
    def test_emit_then_read_the_result(self, app: FastAPI) -> None:
        with TestClient(app) as client:
            accepted = client.post("/invoices/7/emit")
            assert accepted.status_code == 202
            assert accepted.json()["status"] == "PENDING"
            body = poll(client, accepted.json()["task_id"])
        assert (body["status"], body["result"], body["error"]) == (
            "SUCCESS",
            "Factura 7 emitida!",
            None,
        )

    def test_a_wrong_argument_is_refused_by_the_endpoint(self, app: FastAPI) -> None:
        with TestClient(app) as client:
            assert client.post("/invoices/abc/emit").status_code == 422


class TestRetryDemo:
    def test_runs_as_a_script_and_shows_two_retries(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        done = subprocess.run([sys.executable, "examples/retry_demo.py"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert done.stdout.splitlines() == [
            "task.retry  attempt=1 delay=1s error=ConnectionError: ERP unreachable (attempt 1)",
            "task.retry  attempt=2 delay=1s error=ConnectionError: ERP unreachable (attempt 2)",
            "task.succeeded after 3 attempts: invoice 42 synced",
        ], done.stderr
