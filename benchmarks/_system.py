"""What the OS knows: CPU time of a worker's whole process group, and the machine's facts."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

PROC = Path("/proc")


def _pgrp(pid_dir: Path) -> int | None:
    try:
        stat = (pid_dir / "stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[2])


def _threads_cpu_ns(pid_dir: Path) -> int:
    """Time on CPU of every thread of one process, in ns (schedstat, not 10 ms ticks)."""
    total = 0
    try:
        tasks = list((pid_dir / "task").iterdir())
    except OSError:
        return 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds used so far by the live processes of process group `pgid`.

    A worker runs in its own session, so its group is the main process and its pool children.
    """
    total = 0
    for pid_dir in PROC.iterdir():
        if pid_dir.name.isdigit() and _pgrp(pid_dir) == pgid:
            total += _threads_cpu_ns(pid_dir)
    return total / 1e9


def _comm(pid_dir: Path) -> str:
    try:
        return (pid_dir / "comm").read_text().strip()
    except OSError:
        return ""


def _listening_inodes(port: int) -> set[str]:
    found = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in lines:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def _holds_socket(pid_dir: Path, inodes: set[str]) -> bool:
    try:
        fds = list((pid_dir / "fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def service_pids(name: str, port: int) -> list[int]:
    """The process called `name` listening on `port` (other nodes on the machine are not it)."""
    inodes = _listening_inodes(port)
    return [
        int(d.name)
        for d in PROC.iterdir()
        if d.name.isdigit() and _comm(d) == name and _holds_socket(d, inodes)
    ]


class ServiceClock:
    """CPU seconds of the shared service listening on `port`, read from /proc.

    The services are shared with other work on the machine, so a block's figure includes
    whatever else used them meanwhile: that is why the blocks alternate.
    """

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.pids = service_pids(name, port)

    @property
    def visible(self) -> bool:
        return bool(self.pids)

    def seconds(self) -> float:
        return sum(_threads_cpu_ns(PROC / str(pid)) for pid in self.pids) / 1e9


def client_cpu_seconds() -> float:
    """CPU seconds of this process (all its threads), from the OS clock."""
    return time.process_time()


def _cpu_model() -> str:
    try:
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float:
    try:
        for line in (PROC / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def machine_facts() -> dict[str, str]:
    """CPU, cores, memory, OS, Python and load: printed above every table."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cpu": f"{_cpu_model()} ({os.cpu_count()} cores visible)",
        "memory": f"{_memory_gb()} GB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load average at start": load,
    }
