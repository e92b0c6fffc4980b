"""Publishing after `os.fork()` (gunicorn --preload, multiprocessing): parent and children."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import hexa
from hexa._app import HexaCelery, build_app
from hexa._options import SendOptions
from hexa._publisher import publish
from tests.conftest import StartWorker

pytestmark = pytest.mark.integration

CHAOS = Path(__file__).parents[1] / "chaos" / "projects" / "chaos"


def echo(app: HexaCelery, value: str, times: int = 1) -> str:
    """Publish `times` messages, then wait for every result: the last one's value."""
    sent = [publish("chaos.echo", [value], {}, SendOptions(), app=app) for _ in range(times)]
    results = {result.get(timeout=20) for result in sent}
    assert results == {value}
    return value


def in_child(app: HexaCelery, value: str) -> int:
    """Fork; the child publishes and waits for its result. Returns the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        code = 0 if echo(app, value, times=10) == value else 3
    except BaseException:
        code = 2
    finally:
        os._exit(code)  # never run the parent's pytest machinery in the child


def exit_code(pid: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    raise AssertionError(f"child {pid} still running after {timeout}s")


class TestFork:
    def test_parent_and_forked_children_publish_and_get_results(
        self,
        project: Callable[..., Path],
        start_worker: StartWorker,
        real_env: dict[str, str],
    ) -> None:
        start_worker(project(CHAOS), real_env)
        app = build_app(hexa.Settings.from_env(environ=real_env))
        try:
            assert echo(app, "before the fork") == "before the fork"  # connections now open
            children = [in_child(app, f"child {n}") for n in range(4)]
            assert echo(app, "parent after the fork", times=10) == "parent after the fork"
            assert [exit_code(pid) for pid in children] == [0, 0, 0, 0]
            assert echo(app, "parent at the end") == "parent at the end"
        finally:
            app.close()
