"""What every scenario shares: the plan, the workers and clients of a run, waiting for results."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import redis
from celery import Celery
from kombu import Connection

import hexa
from benchmarks._peers import (
    CeleryClient,
    Client,
    DramatiqClient,
    HexaClient,
    KombuFloor,
    TaskiqClient,
    vhost_url,
)
from benchmarks._projects import bench_project
from benchmarks._stats import Line, Row
from benchmarks._system import ServiceClock
from benchmarks._workers import Worker, unique
from hexa._app import APP_NAME, build_app, celery_config

RESULT_PREFIX = "celery-task-meta-"
#: Suffixes of the queues a system declares beside the one it is given.
QUEUE_SUFFIXES = ("", ".dead", ".DQ", ".XQ", ".dead_letter")


@dataclass
class Plan:
    """How much work each measurement does: `quick` for CI, full for the committed table."""

    quick: bool
    rounds: int = 3
    sync_block: int = 1000  # tasks per block, sync no-op, per system
    io_block: int = 1000  # 50 ms awaits per block at 64 in flight
    publish_block: int = 2000  # messages per block, publish only
    threads_block: int = 3200  # messages per block from 16 threads
    batch: int = 5000
    burst: int = 1000
    latency: int = 50  # sequential round trips per system and round
    layer_rounds: int = 6
    layer_block: int = 400
    io_seed: int = 1000
    light_block: int = 300
    start_rounds: int = 5
    big_modules: int = 100
    big_tasks: int = 20
    scale_inflight: tuple[int, ...] = (64, 1000, 5000)
    scale_long: int = 5000  # tasks awaiting 1 s each
    scale_rounds: int = 3

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if not quick:
            return cls(quick=False)
        return cls(
            quick=True,
            sync_block=150,
            io_block=100,
            publish_block=200,
            threads_block=480,
            batch=600,
            burst=100,
            latency=6,
            layer_rounds=2,
            layer_block=100,
            io_seed=40,
            light_block=100,
            start_rounds=1,
            big_modules=20,
            big_tasks=10,
            scale_inflight=(64, 1000),
            scale_long=1000,
            scale_rounds=1,
        )


@dataclass
class Bench:
    """Connections, clients and workers shared by the scenarios; cleaned up at the end."""

    plan: Plan
    broker: str
    backend: str
    root: Path
    queues: list[str] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    apps: list[Celery] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    named: dict[str, Worker] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # capability -> why not
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        self.redis = redis.Redis.from_url(self.backend)
        self.project = bench_project(self.root / "project")
        self.logs = self.root / "logs"
        self.env = {"RABBITMQ_URL": self.broker, "REDIS_URL": self.backend}
        self.rabbit = ServiceClock("beam.smp", _port(self.broker, 5672))
        self.redis_clock = ServiceClock("redis-server", _port(self.backend, 6379))
        hexa.use_app(build_app(self.settings(self.queue("hexa-client"))))

    # -- clients ------------------------------------------------------------------------

    def queue(self, prefix: str) -> str:
        name = unique(f"hexa-bench-{prefix}")
        self.queues.append(name)
        return name

    def settings(self, queue: str) -> hexa.Settings:
        return hexa.Settings(self.broker, self.backend, self.root / ".hexa", queue)

    def raw_app(self, queue: str, celery_defaults: bool = False) -> Celery:
        """A plain Celery client: hexa's settings (same confirms, same queue), or Celery's."""
        app = Celery(APP_NAME, broker=self.broker, backend=self.backend, set_as_current=False)
        if celery_defaults:
            app.conf.task_default_queue = queue
        else:
            app.conf.update(celery_config(self.settings(queue)))
        self.apps.append(app)
        return app

    def client(self, system: str, queue: str) -> Client:
        """`system`: celery (its defaults), raw (hexa's settings), hexa, dramatiq, taskiq, floor."""
        made: Client
        if system in ("celery", "raw", "raw2"):
            made = CeleryClient(self.raw_app(queue, system == "celery"), queue)
        elif system == "hexa":
            made = HexaClient(queue)
        elif system == "dramatiq":
            made = DramatiqClient(queue, self.broker, self.backend)
        elif system == "taskiq":
            made = TaskiqClient(queue, self.broker, self.backend)
        else:
            made = KombuFloor(self.broker, queue)
        self.clients.append(made)
        return made

    # -- workers ------------------------------------------------------------------------

    def worker(self, system: str, prefix: str, inflight: int = 0, **options: Any) -> Worker:
        """A worker of `system` on a queue of its own: prefork 2 (or 2 processes), or with
        `inflight` > 0 one process with that many tasks in flight."""
        queue = self.queue(prefix)
        env = dict(self.env)
        if system == "celery":
            env["BENCH_CELERY_DEFAULTS"] = "1"
        kind, argv = "rawapp" if system in ("celery", "raw", "raw2") else system, None
        if system in ("dramatiq", "taskiq"):
            argv = peer_argv(system, inflight)
            env["RABBITMQ_URL"] = vhost_url(self.broker)
            if inflight:
                env["BENCH_PREFETCH"] = str(inflight)
        elif inflight:
            options = {"pool": "threads", "concurrency": inflight, **options}
        root = options.pop("root", self.project)
        worker = Worker(
            kind, root, queue, env, self.logs, argv=argv, defaults=system == "celery", **options
        )
        self.workers.append(worker)
        self.named[prefix] = worker
        return worker

    def stop(self, *workers: Worker) -> None:
        for worker in workers:
            worker.stop()
            if worker in self.workers:
                self.workers.remove(worker)
            self.named = {k: w for k, w in self.named.items() if w is not worker}

    def check_workers(self) -> None:
        """A worker that died (bad import, broker refused) fails the run with its log's end."""
        for worker in self.workers:
            if not worker.alive():
                raise RuntimeError(
                    f"{worker.kind} worker on {worker.queue} exited "
                    f"({worker.proc.returncode}):\n{worker.log_tail()}"
                )

    def close(self) -> None:
        for worker in list(self.workers):
            self.stop(worker)
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.close()
        for app in self.apps:
            app.close()
        self.delete_queues(self.queues)
        self.redis.close()

    def delete_queues(self, names: Sequence[str]) -> None:
        with Connection(self.broker) as conn:
            for name in names:
                for suffix in QUEUE_SUFFIXES:
                    _quietly(conn, "queue_delete", name + suffix)
                _quietly(conn, "exchange_delete", name)

    def purge(self, queue: str) -> None:
        """Empty a queue nobody consumes (publish-only blocks), so the broker stays small."""
        with Connection(self.broker) as conn:
            _quietly(conn, "queue_purge", queue)

    # -- waiting for results -------------------------------------------------------------

    def wait_keys(self, keys: Sequence[str], timeout: float = 180.0) -> float:
        """Until every result key exists; returns when that was seen (perf_counter).

        Polls the last key first (cheap), then counts the rest with one EXISTS per 500.
        """
        deadline = time.monotonic() + timeout
        pending = list(keys)
        while pending:
            if self.redis.exists(pending[-1]):
                found = self._existing(pending)
                pending = [k for k, ok in zip(pending, found, strict=True) if not ok]
                if not pending:
                    break
            self.check_workers()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(pending)} of {len(keys)} results missing after {timeout}s"
                )
            time.sleep(0.002 if len(pending) < 4 else 0.01)
        return time.perf_counter()

    def _existing(self, keys: Sequence[str]) -> list[bool]:
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(key)
            return [bool(x) for x in pipe.execute()]

    def forget(self, keys: Sequence[str]) -> None:
        """Delete result keys once measured: the shared Redis keeps nothing of the run."""
        for start in range(0, len(keys), 1000):
            self.redis.delete(*keys[start : start + 1000])


def _port(url: str, default: int) -> int:
    return urlparse(url.split(";")[0]).port or default


def _quietly(conn: Connection, method: str, name: str) -> None:
    channel = conn.channel()
    try:
        getattr(channel, method)(name)
    except Exception:  # never declared
        pass
    finally:
        with contextlib.suppress(Exception):
            channel.close()


def peer_argv(system: str, inflight: int) -> list[str]:
    """Dramatiq's and taskiq's workers: their defaults, 2 processes; or one with `inflight`."""
    if system == "dramatiq":
        size = ["--processes", "1", "--threads", "64"] if inflight else ["--processes", "2"]
        return [sys.executable, "-m", "dramatiq", "dramapp", *size]
    size = ["--workers", "1", "--max-async-tasks", str(inflight)] if inflight else []
    return [sys.executable, "-m", "taskiq", "worker", "taskiqapp:broker", *size]


@dataclass
class Arm:
    """One side of a comparison: how to send a task, and which worker runs it."""

    name: str
    send: Callable[[int], str]  # returns the task id
    worker: Worker | None = None
    sentinel: Callable[[], str] | None = None
    cost: list[tuple[float, float]] = field(default_factory=list)
    wall: list[tuple[float, float]] = field(default_factory=list)
    samples: list[float] = field(default_factory=list)


def rotations(arms: Sequence[Any], rounds: int) -> Iterator[Any]:
    """Every arm once per round, the order rotated so none always runs first."""
    arms = list(arms)
    for index in range(rounds):
        shift = index % len(arms)
        yield from arms[shift:] + arms[:shift]
