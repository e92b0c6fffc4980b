"""What `hexa worker --reload` watches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hexa
from hexa._reload import CHILD_ENV, SUPERVISOR_ENV, WorkerChild, is_reload_child, watched_paths


class TestWatchedPaths:
    def test_modules_hexa_and_the_projects_own_packages_are_watched(self, tmp_path: Path) -> None:
        for folder in ("modules", "shared", "core", ".hidden", "data"):
            (tmp_path / folder).mkdir()
        for package in ("shared", "core", ".hidden"):
            (tmp_path / package / "__init__.py").touch()
        hexa_dir = Path(hexa.__file__).resolve().parent
        expected = [tmp_path / "modules", hexa_dir, tmp_path / "core", tmp_path / "shared"]
        assert watched_paths(tmp_path) == [p.resolve() for p in expected]

    def test_a_missing_modules_folder_is_left_out(self, tmp_path: Path) -> None:
        assert tmp_path / "modules" not in watched_paths(tmp_path)


class TestReloadChild:
    def test_only_the_supervisors_child_counts_as_one(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(CHILD_ENV, raising=False)
        assert not is_reload_child()
        monkeypatch.setenv(CHILD_ENV, "1")
        assert is_reload_child()


# A worker-like process under a parent that gets SIGKILLed: the parent prints the child's pid,
# the child prints "ready" once it follows its parent (as `mode` says), then both just wait.
ORPHAN = """
import os, subprocess, sys, time
mode = sys.argv[-1]
if sys.argv[1] == "parent":
    child = subprocess.Popen([sys.executable, __file__, mode])
    print("pid", child.pid, flush=True)
    time.sleep(60)
from hexa._reload import set_parent_death_signal, stop_when_orphaned
parent = os.getppid()
if mode == "death-signal":
    assert set_parent_death_signal(15)
print("ready", flush=True)
if mode == "poll":
    stop_when_orphaned(parent, interval=0.05)
time.sleep(60)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _outlives_its_parent(tmp_path: Path, mode: str) -> bool:
    """SIGKILL the parent once the child is ready: does the child still run 5 s later?"""
    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN)
    parent = subprocess.Popen(
        [sys.executable, str(script), "parent", mode], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    lines = [parent.stdout.readline().split() for _ in range(2)]
    (child,) = [int(words[1]) for words in lines if words[0] == "pid"]
    assert ["ready"] in lines
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 5
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    outlived = _running(child)
    if outlived:
        os.kill(child, signal.SIGKILL)
    return outlived


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; prctl is Linux's")
class TestTheWorkerStopsWithItsSupervisor:
    def test_the_parent_death_signal_stops_an_orphan(self, tmp_path: Path) -> None:
        assert _outlives_its_parent(tmp_path, "death-signal") is False

    def test_the_portable_parent_check_stops_an_orphan(self, tmp_path: Path) -> None:
        assert _outlives_its_parent(tmp_path, "poll") is False

    def test_an_orphan_that_follows_neither_runs_on(self, tmp_path: Path) -> None:
        """What the two tests above would see without the fix."""
        assert _outlives_its_parent(tmp_path, "nothing") is True

    def test_the_supervisor_puts_its_pid_in_the_childs_environment(self, tmp_path: Path) -> None:
        write = (
            f"import os, pathlib; pathlib.Path('pid').write_text(os.environ[{SUPERVISOR_ENV!r}])"
        )
        child = WorkerChild([sys.executable, "-c", write], tmp_path)
        child.start()
        assert child.proc is not None
        child.proc.wait(30)
        child.stop()
        assert (tmp_path / "pid").read_text() == str(os.getpid())
