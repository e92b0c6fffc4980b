"""Prometheus metrics scraped from real workers: `hexa worker --metrics-port`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import StartWorker
from tests.support.services import unique
from tests.support.worker import REPO, WorkerProcess

pytestmark = pytest.mark.integration

OBSERVE_PROBE = Path(__file__).parent / "projects" / "observe_probe"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample at /metrics, keyed by (sample name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def metrics_port(worker: WorkerProcess) -> int:
    return int(worker.wait_for("metrics.serving")[0]["port"])


def scrape_until(
    port: int, expected: dict[tuple[str, tuple[tuple[str, str], ...]], float], timeout: float = 30
) -> Samples:
    """Scrape until every expected sample has its value (counts land just after results)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        got = {key: samples.get(key) for key in expected}
        if got == expected or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted(labels.items())))


@pytest.fixture
def probe(project: Callable[..., Path]) -> Path:
    return project(OBSERVE_PROBE)


class TestWorkerMetrics:
    def test_thirty_tasks_on_prefork_with_two_processes_are_counted_exactly(
        self, probe: Path, start_worker: StartWorker, real_env: dict[str, str], plain_client: Celery
    ) -> None:
        worker = start_worker(probe, real_env, ["--concurrency=2", "--metrics-port=0"])
        port = metrics_port(worker)
        results = [plain_client.send_task("observe_probe.ok", args=[n]) for n in range(20)]
        results += [plain_client.send_task("observe_probe.fails", args=[n]) for n in range(10)]
        for result in results:
            result.get(timeout=60, propagate=False)
        ok, fails = "observe_probe.ok", "observe_probe.fails"
        expected = {
            key("hexa_tasks_total", task=ok, outcome="succeeded"): 20.0,
            key("hexa_tasks_total", task=ok, outcome="failed"): 0.0,
            key("hexa_tasks_total", task=ok, outcome="retried"): 0.0,
            key("hexa_tasks_total", task=ok, outcome="dead_lettered"): 0.0,
            key("hexa_tasks_total", task=fails, outcome="succeeded"): 0.0,
            key("hexa_tasks_total", task=fails, outcome="failed"): 10.0,
            key("hexa_tasks_total", task=fails, outcome="retried"): 10.0,
            key("hexa_tasks_total", task=fails, outcome="dead_lettered"): 10.0,
            key("hexa_task_duration_seconds_count", task=ok): 20.0,
            key("hexa_task_duration_seconds_count", task=fails): 20.0,  # two attempts each
            key("hexa_tasks_in_flight", task=ok): 0.0,
            key("hexa_tasks_in_flight", task=fails): 0.0,
        }
        samples = scrape_until(port, expected)
        assert {k: samples.get(k) for k in expected} == expected
        time.sleep(1)  # nothing is counted twice, late
        assert {k: scrape(port).get(k) for k in expected} == expected

    def test_tasks_running_in_two_processes_are_two_in_flight_then_none(
        self, probe: Path, start_worker: StartWorker, real_env: dict[str, str], plain_client: Celery
    ) -> None:
        worker = start_worker(probe, real_env, ["--concurrency=2", "--metrics-port=0"])
        port = metrics_port(worker)
        held = [plain_client.send_task("observe_probe.hold", args=[3.0]) for _ in range(2)]
        in_flight = key("hexa_tasks_in_flight", task="observe_probe.hold")
        samples = scrape_until(port, {in_flight: 2.0}, timeout=15)
        assert samples.get(in_flight) == 2.0
        for result in held:
            result.get(timeout=30)
        assert scrape_until(port, {in_flight: 0.0}).get(in_flight) == 0.0

    def test_threads_pool_counts_sync_and_async_tasks_and_folds_unknown_names_into_other(
        self, probe: Path, start_worker: StartWorker, real_env: dict[str, str], plain_client: Celery
    ) -> None:
        worker = start_worker(
            probe, real_env, ["--pool=threads", "--concurrency=4", "--metrics-port=0"]
        )
        port = metrics_port(worker)
        results = [plain_client.send_task("observe_probe.ok", args=[n]) for n in range(5)]
        results += [plain_client.send_task("observe_probe.ok_async", args=[n]) for n in range(5)]
        strangers = [f"evil.name_{unique('x')}" for _ in range(25)]
        for name in strangers:  # a hostile sender: every message a new task name
            plain_client.send_task(name)
        assert [r.get(timeout=30) for r in results] == [*range(5), *range(5)]
        other = key("hexa_tasks_total", task="other", outcome="dead_lettered")
        expected = {
            key("hexa_tasks_total", task="observe_probe.ok", outcome="succeeded"): 5.0,
            key("hexa_tasks_total", task="observe_probe.ok_async", outcome="succeeded"): 5.0,
            key("hexa_task_duration_seconds_count", task="observe_probe.ok_async"): 5.0,
            other: 25.0,
        }
        samples = scrape_until(port, expected)
        assert {k: samples.get(k) for k in expected} == expected
        labelled = {dict(labels).get("task") for _, labels in samples}
        assert not labelled & set(strangers)


CLIENT_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import hexa
    from hexa import remote_task
    from prometheus_client import REGISTRY, generate_latest

    if sys.argv[1] == "call":
        hexa.metrics.enable_client_metrics()

    @remote_task("observe_probe.ok")
    def ok(n: int) -> int: ...

    for n in range(3):
        ok.send(n)
    try:
        hexa.use_app(hexa.build_app(hexa.Settings.from_env(environ={
            **os.environ, "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1//",
            "HEXA_PUBLISH_TIMEOUT": "1"})))
        ok.send(99)
    except hexa.PublishError:
        pass
    print(generate_latest(REGISTRY).decode())
    """
)


class TestClientMetrics:
    @pytest.mark.parametrize("switch", ["call", "env"])
    def test_a_client_that_enables_them_counts_confirmed_and_failed_publishes(
        self, switch: str, real_env: dict[str, str], tmp_path: Path
    ) -> None:
        env = {**real_env, "PYTHONPATH": str(REPO)}
        if switch == "env":
            env["HEXA_CLIENT_METRICS"] = "1"
        done = subprocess.run(
            [sys.executable, "-c", "import hexa.metrics\n" + CLIENT_SCRIPT, switch],
            env={**_base_env(), **env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(done.stdout)
            for s in family.samples
        }
        task = "observe_probe.ok"
        assert value(samples, "hexa_publishes_total", task=task, outcome="confirmed") == 3.0
        assert value(samples, "hexa_publishes_total", task=task, outcome="failed") == 1.0
        assert value(samples, "hexa_publish_duration_seconds_count", task=task) == 3.0

    def test_a_client_that_does_not_enable_them_has_none(
        self, real_env: dict[str, str], tmp_path: Path
    ) -> None:
        done = subprocess.run(
            [sys.executable, "-c", "import hexa.metrics\n" + CLIENT_SCRIPT, "off"],
            env={**_base_env(), **real_env, "PYTHONPATH": str(REPO)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "hexa_publish" not in done.stdout
        assert "python_info" in done.stdout  # the registry itself was printed


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "HEXA_CLIENT_METRICS"}
