"""`hexa worker --reload` on the real services: a rewritten task answers anew."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery

from tests.conftest import StartWorker

pytestmark = pytest.mark.integration

RELOAD_PROBE = Path(__file__).parent / "projects" / "reload_probe"


def alive_in_group(pgid: int) -> list[int]:
    """Processes (not zombies) still in process group `pgid`."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


class TestReload:
    def test_a_task_answers_v2_within_20s_after_its_file_is_rewritten(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        root = project(RELOAD_PROBE)
        worker = start_worker(root, real_env, ["--reload", "--concurrency=1"])
        assert plain_client.send_task("reload_probe.version").get(timeout=20) == "v1"

        source = root / "modules" / "reload_probe" / "module.py"
        source.write_text(source.read_text().replace('return "v1"', 'return "v2"'))
        rewritten = time.monotonic()
        reload = worker.wait_for("worker.reload", timeout=20)[0]
        assert reload["changed"] == ["modules/reload_probe/module.py"]
        worker.wait_for("worker.ready", count=2, timeout=20)
        answer = plain_client.send_task("reload_probe.version").get(timeout=20)
        assert (answer, time.monotonic() - rewritten < 20) == ("v2", True)

        children = [e["pid"] for e in worker.events("worker.started")]
        assert len(children) == 2
        assert (alive_in_group(children[0]) == [], bool(alive_in_group(children[1]))) == (
            True,
            True,
        ), "the first worker (and its pool) is gone, the second one runs"
        worker.stop()
        assert worker.proc.returncode == 0, worker.output()
        assert [pid for pid in children if alive_in_group(pid)] == []

    def test_a_module_that_fails_to_import_stops_only_the_worker_until_the_next_save(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
        plain_client: Celery,
    ) -> None:
        root = project(RELOAD_PROBE)
        worker = start_worker(root, real_env, ["--reload", "--concurrency=1"])
        source = root / "modules" / "reload_probe" / "module.py"
        good = source.read_text()
        source.write_text(good + "\nraise RuntimeError('half-saved edit')\n")
        exited = worker.wait_for("worker.exited", timeout=20)[0]
        assert exited["code"] != 0
        assert "half-saved edit" in worker.output()
        assert worker.proc.poll() is None, "the supervisor keeps running"

        source.write_text(good.replace('return "v1"', 'return "v2"'))
        worker.wait_for("worker.ready", count=2, timeout=20)
        assert plain_client.send_task("reload_probe.version").get(timeout=20) == "v2"

    def test_a_supervisor_killed_with_sigkill_leaves_no_worker_running(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
    ) -> None:
        root = project(RELOAD_PROBE)
        worker = start_worker(root, real_env, ["--reload", "--concurrency=1"])
        (child,) = [e["pid"] for e in worker.events("worker.started")]
        assert alive_in_group(child), "the worker and its pool run in the child's group"
        os.kill(worker.proc.pid, signal.SIGKILL)  # the supervisor only, not its child's group
        worker.proc.wait(10)
        deadline = time.monotonic() + 30
        while alive_in_group(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive_in_group(child) == [], worker.output()
