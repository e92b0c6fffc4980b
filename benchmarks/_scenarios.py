"""The five measurements, each hexa against raw Celery in alternating blocks of one run."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from kombu import Connection

import hexa
from benchmarks import bench_tasks
from benchmarks._observability import observability
from benchmarks._projects import bench_project, big_projects
from benchmarks._stats import Row, compare, percentile
from benchmarks._workers import Worker, unique
from hexa._app import APP_NAME, build_app, celery_config

RESULT_PREFIX = "celery-task-meta-"
#: Threads of the threads-pool workers in the I/O benchmark: tasks in flight on one loop.
#: 128 ran ~30 % more 50 ms tasks per second than 64 on this machine, 256 no more than 128.
IO_THREADS = 128


@dataclass
class Plan:
    """How much work each measurement does: `quick` for CI, full for the committed table."""

    quick: bool
    rounds: int = 6
    block: int = 400  # tasks per block, sync no-op
    publish_block: int = 300
    latency: int = 60  # sequential round trips per arm and round
    io_hexa: int = 1000
    io_seed: int = 1000  # ~30 s at the seed's pace: one round only
    io_rounds: int = 1
    light_block: int = 300
    start_rounds: int = 5
    big_modules: int = 100
    big_tasks: int = 20

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if not quick:
            return cls(quick=False)
        return cls(
            quick=True,
            rounds=2,
            block=150,
            publish_block=150,
            latency=20,
            io_hexa=300,
            io_seed=40,
            light_block=100,
            start_rounds=1,
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
    apps: list[Celery] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    named: dict[str, Worker] = field(default_factory=dict)
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        self.redis = redis.Redis.from_url(self.backend)
        self.project = bench_project(self.root / "project")
        self.logs = self.root / "logs"
        self.env = {"RABBITMQ_URL": self.broker, "REDIS_URL": self.backend}

    # -- clients and workers ------------------------------------------------------------

    def queue(self, prefix: str) -> str:
        name = unique(f"hexa-bench-{prefix}")
        self.queues.append(name)
        return name

    def settings(self, queue: str) -> hexa.Settings:
        return hexa.Settings(self.broker, self.backend, self.root / ".hexa", queue)

    def raw_client(self, queue: str, celery_defaults: bool = False) -> Celery:
        """A plain Celery client: hexa's settings (same confirms, same queue), or Celery's."""
        app = Celery(APP_NAME, broker=self.broker, backend=self.backend, set_as_current=False)
        if celery_defaults:
            app.conf.task_default_queue = queue
        else:
            app.conf.update(celery_config(self.settings(queue)))
        self.apps.append(app)
        return app

    def hexa_client(self, queue: str) -> Celery:
        app = build_app(self.settings(queue))
        self.apps.append(app)
        return app

    def worker(self, kind: str, prefix: str, **options: Any) -> Worker:
        env = dict(self.env)
        if options.pop("celery_defaults", False):
            env["BENCH_CELERY_DEFAULTS"] = "1"
        root = options.pop("root", self.project)
        worker = Worker(kind, root, self.queue(prefix), env, self.logs, **options)
        self.workers.append(worker)
        self.named[prefix] = worker
        return worker

    def prefork(self) -> tuple[Worker, Worker, Worker]:
        """hexa, raw and raw2 on prefork 2, started on first use and kept for the run."""
        if "hexa" not in self.named:
            self.worker("hexa", "hexa")
            self.worker("rawapp", "raw")
            self.worker("rawapp", "raw2")
            hexa.use_app(self.hexa_client(self.named["hexa"].queue))
            ids = [bench_tasks.noop.send().id]
            ids += [
                self.raw_client(self.named[n].queue).send_task("bench.noop").id
                for n in ("raw", "raw2")
            ]
            self.wait_results([str(i) for i in ids], timeout=90)
        return self.named["hexa"], self.named["raw"], self.named["raw2"]

    def stop(self, *workers: Worker) -> None:
        for worker in workers:
            worker.stop()
            self.workers.remove(worker)
            self.named = {k: w for k, w in self.named.items() if w is not worker}

    def close(self) -> None:
        for worker in list(self.workers):
            self.stop(worker)
        for app in self.apps:
            app.close()
        with Connection(self.broker) as conn:
            for name in self.queues:
                for suffix in ("", ".dead"):
                    channel = conn.channel()
                    try:
                        channel.queue_delete(name + suffix)
                    except Exception:  # never declared
                        pass
                    finally:
                        channel.close()
        self.redis.close()

    def check_workers(self) -> None:
        """A worker that died (bad import, broker refused) fails the run with its log's end."""
        for worker in self.workers:
            if not worker.alive():
                raise RuntimeError(
                    f"{worker.kind} worker on {worker.queue} exited "
                    f"({worker.proc.returncode}):\n{worker.log_tail()}"
                )

    # -- waiting for results -------------------------------------------------------------

    def wait_results(self, ids: list[str], timeout: float = 120.0) -> float:
        """Poll the result keys until every task stored one; returns the time it happened."""
        pending = list(ids)
        deadline = time.monotonic() + timeout
        while pending:
            found = self.redis.mget([RESULT_PREFIX + i for i in pending])
            pending = [i for i, value in zip(pending, found, strict=True) if value is None]
            if not pending:
                break
            self.check_workers()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(ids)} results missing after {timeout}s")
            time.sleep(0.005 if len(pending) < 4 else 0.02)
        return time.perf_counter()


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


def rotations(arms: list[Arm], rounds: int) -> Iterator[Arm]:
    """Every arm once per round, the order rotated so none always runs first."""
    for index in range(rounds):
        shift = index % len(arms)
        yield from arms[shift:] + arms[:shift]


def raw_sender(app: Celery, name: str, **options: Any) -> Callable[[int], str]:
    def send(i: int) -> str:
        return str(app.send_task(name, **options).id)

    return send


def hexa_sender(task: Any, *args: Any) -> Callable[[int], str]:
    def send(i: int) -> str:
        return str(task.send(*args).id)

    return send


@contextmanager
def client_cpu() -> Iterator[list[float]]:
    """CPU seconds and wall seconds of this process over the block."""
    out: list[float] = []
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    yield out
    out += [time.process_time() - cpu, time.perf_counter() - wall]


# -- (1) worker CPU per task, throughput, latency ---------------------------------------


def _worker_block(bench: Bench, arm: Arm, count: int) -> None:
    assert arm.worker is not None
    assert arm.sentinel is not None
    cpu = arm.worker.cpu()
    start = time.perf_counter()
    for i in range(count):
        arm.send(i)
    done = bench.wait_results([arm.sentinel()])
    time.sleep(0.05)  # the other pool child may finish its last task
    arm.cost.append((arm.worker.cpu() - cpu, count + 1))
    arm.wall.append((done - start, count + 1))


def sync_noop(bench: Bench) -> None:
    """(1): the same no-op as a hexa task and as `@app.task`, same worker settings."""
    plan = bench.plan
    hexa_worker, raw_a, raw_b = bench.prefork()
    defaults = bench.worker("rawapp", "celery-defaults", celery_defaults=True)
    clients = {w: bench.raw_client(w.queue, w is defaults) for w in (raw_a, raw_b, defaults)}

    def raw_arm(name: str, worker: Worker) -> Arm:
        send = raw_sender(clients[worker], "bench.noop")
        return Arm(name, send, worker, lambda: send(0))

    noop_sentinel = hexa_sender(bench_tasks.noop)
    arms = [
        raw_arm("raw", raw_a),
        Arm("hexa", noop_sentinel, hexa_worker, lambda: noop_sentinel(0)),
        raw_arm("raw2", raw_b),
        Arm(
            "hexa -> None",
            hexa_sender(bench_tasks.noop_none),
            hexa_worker,
            lambda: noop_sentinel(0),
        ),
        raw_arm("celery defaults", defaults),
    ]
    _ready(bench, arms)
    for arm in rotations(arms, plan.rounds):
        _worker_block(bench, arm, plan.block)
    raw, hexa_arm, raw2, none, celery = arms
    scenario = "1. sync no-op, prefork 2"
    bench.rows += [
        compare(
            scenario,
            "worker CPU per task",
            "µs",
            hexa_arm.cost,
            raw.cost,
            raw2.cost,
            target=("<=", 1.03),
        ),
        compare(
            scenario,
            "worker CPU per task, `-> None` (no result stored)",
            "µs",
            none.cost,
            raw.cost,
            raw2.cost,
            note="lower than raw: nothing to store",
        ),
        compare(
            scenario,
            "throughput",
            "tasks/s",
            hexa_arm.wall,
            raw.wall,
            raw2.wall,
            rate=True,
            note="for information: drifts with the machine's load",
        ),
    ]
    bench.rows += _settings_rows(scenario, raw, raw2, celery)
    _latency(bench, hexa_worker, raw_a, raw_b)
    bench.stop(defaults)


SETTINGS_NOTE = (
    "the same raw `@app.task` no-op: 'raw' column with Celery's defaults (ack on receipt, "
    "prefetch 4 per process, no publisher confirms, no task events), 'hexa' column with hexa's "
    "settings (ack after the task, prefetch 1, confirms, task events); A/A is raw vs raw2, "
    "both with hexa's settings"
)


def _settings_rows(scenario: str, raw: Arm, raw2: Arm, celery: Arm) -> list[Row]:
    """What hexa's safer settings cost against Celery's defaults, raw Celery on both sides."""
    rows = [
        compare(
            scenario,
            "hexa's settings vs Celery's defaults: worker CPU per task",
            "µs",
            raw.cost,
            celery.cost,
            note=SETTINGS_NOTE,
        ),
        compare(
            scenario,
            "hexa's settings vs Celery's defaults: throughput",
            "tasks/s",
            raw.wall,
            celery.wall,
            rate=True,
            note=SETTINGS_NOTE,
        ),
    ]
    floors = [
        compare(scenario, "", "", raw2.cost, raw.cost),
        compare(scenario, "", "", raw2.wall, raw.wall, rate=True),
    ]
    for row, floor in zip(rows, floors, strict=True):
        row.aa, row.aa_rounds = floor.ratio, floor.rounds
    return rows


def _ready(bench: Bench, arms: list[Arm]) -> None:
    """Wait for each worker to answer once (start-up is not part of these blocks)."""
    for arm in arms:
        assert arm.sentinel is not None
        bench.wait_results([arm.sentinel()], timeout=90)


def _latency(bench: Bench, hexa_worker: Worker, raw_a: Worker, raw_b: Worker) -> None:
    """Unloaded round trip: publish, then wait for the result, one task at a time."""
    fresh = {w: bench.raw_client(w.queue) for w in (raw_a, raw_b)}
    arms = [
        Arm("raw", lambda i: fresh[raw_a].send_task("bench.noop").get(timeout=30)),
        Arm("hexa", lambda i: bench_tasks.noop.send().get(timeout=30)),
        Arm("raw2", lambda i: fresh[raw_b].send_task("bench.noop").get(timeout=30)),
    ]
    for arm in rotations(arms, bench.plan.rounds):
        for i in range(bench.plan.latency):
            start = time.perf_counter()
            arm.send(i)
            arm.samples.append(time.perf_counter() - start)
    raw, hexa_arm, raw2 = arms
    for q in (50, 99):
        row = compare(
            "1. sync no-op, prefork 2",
            f"unloaded latency p{q}",
            "ms",
            [(percentile(hexa_arm.samples, q), 1)],
            [(percentile(raw.samples, q), 1)],
            [(percentile(raw2.samples, q), 1)],
            scale=1e3,
            note="publish to result in hand, one task at a time",
        )
        bench.rows.append(row)


# -- (2) client CPU per publish ----------------------------------------------------------


def publish_cost(bench: Bench) -> None:
    """(2): `.send()` with its checks against `app.send_task`, no consumer on the queues."""
    plan = bench.plan
    raw_a = bench.raw_client(bench.queue("pub-raw"))
    raw_b = bench.raw_client(bench.queue("pub-raw2"))
    defaults = bench.raw_client(bench.queue("pub-defaults"), celery_defaults=True)
    hexa_queue = bench.queue("pub-hexa")
    noop = bench_tasks.noop.with_options(queue=hexa_queue)
    none = bench_tasks.noop_none.with_options(queue=hexa_queue)
    arms = [
        Arm("raw", raw_sender(raw_a, "bench.noop")),
        Arm("hexa", hexa_sender(noop)),
        Arm("raw2", raw_sender(raw_b, "bench.noop")),
        Arm("hexa -> None", hexa_sender(none)),
        Arm("raw ignore_result", raw_sender(raw_a, "bench.noop", ignore_result=True)),
        Arm("celery defaults", raw_sender(defaults, "bench.noop")),
    ]
    for arm in arms:  # connect, declare, warm caches
        for i in range(20):
            arm.send(i)
    for arm in rotations(arms, plan.rounds * 2):
        with client_cpu() as spent:
            for i in range(plan.publish_block):
                arm.send(i)
        arm.cost.append((spent[0], plan.publish_block))
        arm.wall.append((spent[1], plan.publish_block))
    raw, hexa_arm, raw2, none, ignore, celery = arms
    scenario = "2. publish, client side"
    bench.rows += [
        compare(
            scenario,
            "client CPU per publish",
            "µs",
            hexa_arm.cost,
            raw.cost,
            raw2.cost,
            target=("<=", 0.75),
            note="both with the Redis result backend and confirms",
        ),
        compare(
            scenario, "client CPU per publish, `-> None` task", "µs", none.cost, raw.cost, raw2.cost
        ),
        compare(
            scenario,
            "client CPU per publish: raw `ignore_result=True` vs raw",
            "µs",
            ignore.cost,
            raw.cost,
            raw2.cost,
            note="the 'hexa' column is raw Celery without a result: the subscription's cost",
        ),
        compare(
            scenario,
            "client CPU per publish: raw with Celery's defaults vs raw",
            "µs",
            celery.cost,
            raw.cost,
            raw2.cost,
            note="the 'hexa' column is raw Celery with Celery's defaults (no publisher confirms): "
            "what hexa's confirms cost",
        ),
    ]
    _get_after_burst(bench)


def _get_after_burst(bench: Bench) -> None:
    """Round trip of one task right after a burst of fire-and-forget sends.

    The burst goes to a queue nobody consumes, so the worker is idle for the probe: what is
    measured is the client catching up with its result connection.
    """
    _, raw_worker, _ = bench.prefork()
    burst = 300 if bench.plan.quick else 500
    sink = bench.queue("burst-sink")
    raw_clients = {n: bench.raw_client(raw_worker.queue) for n in ("raw", "raw2")}
    hexa_sink = bench_tasks.noop.with_options(queue=sink)
    samples: dict[str, list[tuple[float, float]]] = {"raw": [], "hexa": [], "raw2": []}
    for _ in range(bench.plan.rounds):
        for name in ("raw", "hexa", "raw2"):
            client = raw_clients.get(name)
            for _ in range(burst):
                if client is not None:
                    client.send_task("bench.noop", queue=sink)
                else:
                    hexa_sink.send()
            start = time.perf_counter()
            if client is not None:
                client.send_task("bench.noop").get(timeout=30)
            else:
                bench_tasks.noop.send().get(timeout=30)
            samples[name].append((time.perf_counter() - start, 1))
    bench.rows.append(
        compare(
            "2. publish, client side",
            f"send + `.get()` right after {burst} fire-and-forget sends",
            "ms",
            samples["hexa"],
            samples["raw"],
            samples["raw2"],
            scale=1e3,
            note="raw Celery subscribed to every result of the burst and unsubscribed as the "
            "handles were dropped; its next `.get()` reads those replies first",
        )
    )


# -- (3) async -------------------------------------------------------------------------


def _throughput_block(bench: Bench, arm: Arm, count: int) -> None:
    assert arm.worker is not None
    cpu = arm.worker.cpu()
    start = time.perf_counter()
    ids = [arm.send(i) for i in range(count)]
    done = bench.wait_results(ids, timeout=300)
    arm.wall.append((done - start, count))
    arm.cost.append((arm.worker.cpu() - cpu, count))


def async_io(bench: Bench) -> None:
    """(3a): 50 ms awaits on hexa's threads pool vs the seed's `asyncio.run` on prefork 2.

    Also against Celery's own threads pool running a blocking 50 ms sleep: the most a
    threads pool of the same size does on this machine, with no event loop at all.
    """
    plan = bench.plan
    _, raw_a, raw_b = bench.prefork()
    threads = bench.worker("hexa", "hexa-threads", pool="threads", concurrency=IO_THREADS)
    raw_threads = bench.worker("rawapp", "raw-threads", pool="threads", concurrency=IO_THREADS)
    clients = {w: bench.raw_client(w.queue) for w in (raw_a, raw_b, raw_threads)}
    io = bench_tasks.io_sleep.with_options(queue=threads.queue)
    # Warm up both threads pools (threads start on demand, connections per thread), so the
    # blocks measure the steady state the warm prefork workers are already in.
    warm = [io.send().id for _ in range(2 * IO_THREADS)]
    warm += [clients[raw_threads].send_task("bench.sleep_sync").id for _ in range(2 * IO_THREADS)]
    bench.wait_results([str(i) for i in warm], timeout=120)
    arms = [
        Arm("seed", raw_sender(clients[raw_a], "bench.io_sleep"), raw_a),
        Arm("hexa", hexa_sender(io), threads),
        Arm("seed2", raw_sender(clients[raw_b], "bench.io_sleep"), raw_b),
        Arm("threads", raw_sender(clients[raw_threads], "bench.sleep_sync"), raw_threads),
    ]
    counts = {"seed": plan.io_seed, "seed2": plan.io_seed}
    for arm in rotations(arms, plan.io_rounds):
        _throughput_block(bench, arm, counts.get(arm.name, plan.io_hexa))
    seed, hexa_arm, seed2, celery_threads = arms
    scenario = "3. async"
    bench.rows += [
        compare(
            scenario,
            "I/O-bound throughput (await 50 ms)",
            "tasks/s",
            hexa_arm.wall,
            seed.wall,
            seed2.wall,
            rate=True,
            target=(">=", 15),
            note=f"hexa: threads pool, {IO_THREADS} in flight on one loop ({plan.io_hexa} tasks); "
            f"raw: the seed's asyncio.run() per task, prefork 2 ({plan.io_seed} tasks)",
        ),
        compare(
            scenario,
            "I/O-bound: hexa async vs Celery threads pool, blocking sleep",
            "tasks/s",
            hexa_arm.wall,
            celery_threads.wall,
            rate=True,
            note=f"the same {IO_THREADS} threads running `time.sleep(0.05)` in an `@app.task`: "
            "Celery's own ceiling for this wait; near 1.0 means the event loop costs nothing",
        ),
    ]
    bench.stop(threads, raw_threads)


def async_light(bench: Bench) -> None:
    """(3b): CPU-light async tasks, both on prefork 2: persistent loop vs asyncio.run."""
    plan = bench.plan
    hexa_worker, raw_a, raw_b = bench.prefork()
    clients = {w: bench.raw_client(w.queue) for w in (raw_a, raw_b)}
    arms = [
        Arm("seed", raw_sender(clients[raw_a], "bench.light", args=[1]), raw_a),
        Arm("hexa", hexa_sender(bench_tasks.light, 1), hexa_worker),
        Arm("seed2", raw_sender(clients[raw_b], "bench.light", args=[1]), raw_b),
    ]
    for arm in rotations(arms, plan.rounds):
        _throughput_block(bench, arm, plan.light_block)
    seed, hexa_arm, seed2 = arms
    scenario = "3. async"
    bench.rows += [
        compare(
            scenario,
            "CPU-light async throughput, prefork 2",
            "tasks/s",
            hexa_arm.wall,
            seed.wall,
            seed2.wall,
            rate=True,
            target=(">=", 1.0),
            note="hexa's persistent loop vs the seed's asyncio.run() per task",
        ),
        compare(
            scenario,
            "CPU-light async, worker CPU per task",
            "µs",
            hexa_arm.cost,
            seed.cost,
            seed2.cost,
        ),
    ]


# -- (4) worker start to first result ----------------------------------------------------


def start_up(bench: Bench) -> None:
    """(4): start a worker with modules x tasks and wait for one task queued before it."""
    plan = bench.plan
    hexa_root, raw_root = big_projects(bench.root / "big", plan.big_modules, plan.big_tasks)
    probe = f"m{plan.big_modules - 1:03d}.t{plan.big_tasks - 1:02d}"
    arms = [Arm("raw", str), Arm("hexa", str), Arm("raw2", str)]
    for arm in rotations(arms, plan.start_rounds):
        kind, root = ("hexa", hexa_root) if arm.name == "hexa" else ("rawbig", raw_root)
        queue = bench.queue("start")
        client = bench.raw_client(queue)
        task_id = str(client.send_task(probe, args=[1]).id)
        start = time.perf_counter()
        worker = Worker(kind, root, queue, bench.env, bench.logs)
        bench.workers.append(worker)
        try:
            done = bench.wait_results([task_id], timeout=180)
        finally:
            bench.stop(worker)
        arm.wall.append((done - start, 1))
    raw, hexa_arm, raw2 = arms
    tasks = plan.big_modules * plan.big_tasks
    bench.rows.append(
        compare(
            "4. worker start",
            f"start to first result, {plan.big_modules} modules x {plan.big_tasks} tasks",
            "s",
            hexa_arm.wall,
            raw.wall,
            raw2.wall,
            scale=1,
            target=("<=", 1.2),
            note=f"{tasks} tasks; includes the pool's 2 processes",
        )
    )


# -- (5) decoration and discovery, in-process --------------------------------------------


def _in_process(bench: Bench, mode: str, cwd: Path) -> dict[str, float]:
    argv = [sys.executable, "-m", "benchmarks._inprocess", mode]
    env = {**os.environ, **bench.env, "PYTHONPATH": f"{cwd}{os.pathsep}{Path.cwd()}"}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def declaration(bench: Bench) -> None:
    """(5): µs per task to declare it, and to discover it, in a fresh interpreter each time."""
    hexa_root = bench.root / "big" / "big-hexa"
    raw_root = bench.root / "big" / "big-raw"
    if not hexa_root.exists():
        big_projects(bench.root / "big", bench.plan.big_modules, bench.plan.big_tasks)
    for stage, rows in (("decorate", "declare (decorator)"), ("discover", "discover + register")):
        arms = [Arm("raw", str), Arm("hexa", str), Arm("raw2", str)]
        for arm in rotations(arms, max(2, bench.plan.rounds)):
            hexa_side = arm.name == "hexa"
            mode = f"{'hexa' if hexa_side else 'raw'}-{stage}"
            found = _in_process(bench, mode, hexa_root if hexa_side else raw_root)
            arm.cost.append((found["seconds"], found["tasks"]))
        raw, hexa_arm, raw2 = arms
        note = (
            "`@module_task` vs `@app.task` + finalize, 2000 functions"
            if stage == "decorate"
            else "hexa: discover_modules + create_celery_worker (imports, logs); raw: import "
            "the task modules + finalize"
        )
        bench.rows.append(
            compare(
                "5. in-process",
                f"{rows} per task",
                "µs",
                hexa_arm.cost,
                raw.cost,
                raw2.cost,
                note=note,
            )
        )


SCENARIOS: dict[str, Callable[[Bench], None]] = {
    "sync": sync_noop,
    "publish": publish_cost,
    "light": async_light,
    "io": async_io,
    "start": start_up,
    "declare": declaration,
    "observe": observability,
}


def run(
    plan: Plan, broker: str, backend: str, only: list[str], log: Callable[[str], None]
) -> list[Row]:
    """Run the chosen scenarios in order; workers and queues are removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="hexa-bench-") as tmp:
        bench = Bench(plan, broker, backend, Path(tmp), log=log)
        try:
            for name, scenario in SCENARIOS.items():
                if only and name not in only:
                    continue
                log(f"bench: {name} ...")
                started = time.perf_counter()
                before = len(bench.rows)
                scenario(bench)
                for row in bench.rows[before:]:
                    log("  " + describe(row))
                log(f"  ({time.perf_counter() - started:.1f}s)")
        finally:
            hexa.use_app(None)
            bench.close()
        return bench.rows


def describe(row: Row) -> str:
    aa = f"A/A {row.aa:.2f}" if row.aa is not None else "A/A n/a"
    met = "" if row.met is None else (" OK" if row.met else " MISSED")
    target = f" target {row.target}{met}" if row.target else ""
    return (
        f"{row.metric}: raw {row.raw:.1f} {row.unit}, hexa {row.hexa:.1f} {row.unit}, "
        f"ratio {row.ratio:.2f} ({aa}){target}"
    )
