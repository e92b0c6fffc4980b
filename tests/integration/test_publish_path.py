"""hexa's publish fast path on the real RabbitMQ + Redis, consumed by a plain Celery worker.

`.send()` skips `send_task`'s per-message routing and its eager result subscription; these
tests pin what must not change because of that: the message is plain Celery protocol, the
publish signals fire, results still arrive, and a `-> None` task says it stores nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, signals

from hexa import ResultNotStoredError, TaskResult, module_task
from tests.conftest import StartWorker
from tests.integration.projects.publish_probe.module import broken, child, parent, quiet
from tests.support.services import unique

pytestmark = pytest.mark.integration

PUBLISH_PROBE = Path(__file__).parent / "projects" / "publish_probe"

PLAIN_APP = textwrap.dedent(
    """
    import os
    from pathlib import Path
    from celery import Celery

    # Celery's own defaults: nothing hexa configures, to prove the message is plain protocol.
    app = Celery("plain", broker=os.environ["RABBITMQ_URL"], backend=os.environ["REDIS_URL"])

    @app.task(name="publish_path.add")
    def add(a, b):
        return a + b

    @app.task(name="publish_path.touch")
    def touch(path):
        Path(path).write_text("ran")
    """
)


@module_task(module="publish_path")
def add(a: int, b: int) -> int:
    return a + b


@module_task(module="publish_path")
def touch(path: str) -> None:
    Path(path).write_text("ran")


@pytest.fixture
def plain_worker(
    tmp_path: Path, real_env: dict[str, str], hexa_client: Celery
) -> Iterator[subprocess.Popen[bytes]]:
    """A `celery worker` that knows nothing of hexa, on this test's queue."""
    (tmp_path / "plain_app.py").write_text(PLAIN_APP)
    env = {**os.environ, **real_env, "PYTHONPATH": str(tmp_path)}
    argv = [sys.executable, "-m", "celery", "-A", "plain_app", "worker", "--pool=solo"]
    argv += [f"--queues={real_env['HEXA_DEFAULT_QUEUE']}", f"--hostname={unique('plain')}@%h"]
    argv += ["--without-mingle", "--without-gossip", "--loglevel=WARNING"]
    proc = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    yield proc
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _subscriptions(app: Celery) -> set[Any]:
    return set(getattr(app.backend.result_consumer, "subscribed_to", set()))


class TestPublishPath:
    def test_plain_celery_worker_runs_hexa_messages(
        self, plain_worker: subprocess.Popen[bytes], hexa_client: Celery
    ) -> None:
        result = add.send(2, 3)
        assert isinstance(result, TaskResult)
        assert result.get(timeout=30) == 5
        assert result.status == "SUCCESS"
        assert plain_worker.poll() is None

    def test_publish_signals_fire_with_the_message(self, hexa_client: Celery) -> None:
        seen: list[tuple[str, Any, Any]] = []
        flags: list[bool] = []

        def before(sender: Any = None, headers: Any = None, **_: Any) -> None:
            seen.append(("before", sender, headers["id"]))
            flags.append(headers["ignore_result"])

        def after(sender: Any = None, headers: Any = None, **_: Any) -> None:
            seen.append(("after", sender, headers["id"]))

        signals.before_task_publish.connect(before, weak=False)
        signals.after_task_publish.connect(after, weak=False)
        try:
            result = add.send(1, 1)
            touch.send("/nonexistent/never-run")
        finally:
            signals.before_task_publish.disconnect(before)
            signals.after_task_publish.disconnect(after)
        name = "publish_path.add"
        assert seen[:2] == [("before", name, result.id), ("after", name, result.id)]
        touched = "publish_path.touch"
        assert [s[:2] for s in seen[2:]] == [("before", touched), ("after", touched)]
        # the message tells any worker: store a result for add, none for the `-> None` task
        assert flags == [False, True]

    def test_delivery_options_travel_in_the_message(self, hexa_client: Celery) -> None:
        seen: dict[str, Any] = {}

        def before(headers: Any = None, properties: Any = None, **_: Any) -> None:
            seen.update(headers=headers, properties=properties)

        signals.before_task_publish.connect(before, weak=False)
        try:
            add.with_options(countdown=30, expires=60, priority=3).send(1, 2)
        finally:
            signals.before_task_publish.disconnect(before)
        assert seen["headers"]["eta"] is not None
        assert seen["headers"]["expires"] > seen["headers"]["eta"]
        assert seen["properties"]["priority"] == 3
        # a delayed message waits in RabbitMQ's delay queues with no TTL (which would let it
        # out early); the `expires` header still makes the worker drop it when too late
        assert "expiration" not in seen["properties"]
        signals.before_task_publish.connect(before, weak=False)
        try:
            add.with_options(expires=60).send(1, 2)
        finally:
            signals.before_task_publish.disconnect(before)
        assert seen["properties"]["expiration"] == 60

    def test_burst_subscribes_nothing_and_get_returns(
        self, plain_worker: subprocess.Popen[bytes], hexa_client: Celery
    ) -> None:
        results = [add.send(i, 1) for i in range(500)]
        # Celery's send_task would hold 500 result subscriptions here.
        assert _subscriptions(hexa_client) == set()
        assert results[0].get(timeout=30) == 1
        assert results[-1].get(timeout=30) == 500
        assert len({r.id for r in results}) == 500

    def test_none_task_stores_nothing_and_says_so(
        self, plain_worker: subprocess.Popen[bytes], hexa_client: Celery, tmp_path: Path
    ) -> None:
        marker = tmp_path / "touched"
        result = touch.send(str(marker))
        assert result.stored is False
        with pytest.raises(ResultNotStoredError, match=r"publish_path\.touch.*-> None"):
            result.get(timeout=30)
        # The solo worker runs messages in order: once this one is done, touch is too.
        assert add.send(0, 0).get(timeout=30) == 0
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.read_text() == "ran"
        backend = hexa_client.backend
        assert backend.get(backend.get_key_for_task(result.id)) is None


class TestOnAHexaWorker:
    def test_success_stores_nothing_failure_is_stored(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        hexa_client: Celery,
    ) -> None:
        start_worker(project(PUBLISH_PROBE), real_env, ["--pool=solo"])
        ok, bad = quiet.send(1), broken.send(2)
        deadline = time.monotonic() + 30
        while bad.status != "FAILURE" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bad.status == "FAILURE"  # visible in `hexa status` though nothing else is stored
        # the solo worker ran `ok` first: it succeeded and stored nothing
        backend = hexa_client.backend
        assert backend.get(backend.get_key_for_task(ok.id)) is None
        assert ok.status == "PENDING"

    def test_a_task_publishing_a_task_passes_its_lineage(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        hexa_client: Celery,
    ) -> None:
        start_worker(project(PUBLISH_PROBE), real_env, ["--pool=solo"])
        sent = parent.send()
        child_id = sent.get(timeout=30)
        assert TaskResult(child_id, hexa_client).get(timeout=30) == [sent.id, sent.id]

    def test_threads_pool_with_task_events_runs_a_burst(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        hexa_client: Celery,
    ) -> None:
        # Task events sent with publisher confirms deadlocked a threads-pool worker under load
        # (244 of 300 tasks stuck); events are now never confirmed, so Flower may turn them on.
        worker = start_worker(project(PUBLISH_PROBE), real_env, ["--pool=threads", "-c", "8"])
        node = worker.wait_for("worker.ready")[0]["hostname"]
        assert hexa_client.control.enable_events(destination=[node], reply=True, timeout=5)
        results = [child.send() for _ in range(300)]
        assert results[-1].get(timeout=60)[0] is None  # published from here: no parent
        assert all(r.get(timeout=60) == [None, r.id] for r in results)
