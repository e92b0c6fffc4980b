"""The layer's own cost: hexa against raw Celery configured with hexa's settings.

Each measurement runs hexa and its raw-Celery twin ("raw") in alternating blocks, beside a
second twin ("raw2") whose ratio to the first is the A/A noise floor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import bench_tasks
from benchmarks._bench import RESULT_PREFIX, Arm, Bench, rotations
from benchmarks._projects import big_projects
from benchmarks._stats import compare
from benchmarks._workers import Worker

#: Threads of the threads-pool workers in the I/O benchmark against the seed.
IO_THREADS = 128


def prefork(bench: Bench) -> tuple[Worker, Worker, Worker]:
    """hexa, raw and raw2 on prefork 2: the sync scenario's, or started here."""
    for name in ("hexa", "raw", "raw2"):
        if name not in bench.named:
            worker = bench.worker(name, name)
            bench.wait_keys(bench.client(name, worker.queue).send("noop", 1), timeout=120)
    return bench.named["hexa"], bench.named["raw"], bench.named["raw2"]


def raw_sender(app: Any, name: str, **options: Any) -> Any:
    def send(i: int) -> str:
        return str(app.send_task(name, **options).id)

    return send


def hexa_sender(task: Any, *args: Any) -> Any:
    def send(i: int) -> str:
        return str(task.send(*args).id)

    return send


def _keys(ids: list[str]) -> list[str]:
    return [RESULT_PREFIX + i for i in ids]


def _throughput_block(bench: Bench, arm: Arm, count: int) -> None:
    assert arm.worker is not None
    cpu = arm.worker.cpu()
    start = time.perf_counter()
    ids = [arm.send(i) for i in range(count)]
    done = bench.wait_keys(_keys(ids), timeout=300)
    bench.forget(_keys(ids))
    arm.wall.append((done - start, count))
    arm.cost.append((arm.worker.cpu() - cpu, count))


def async_io(bench: Bench) -> None:
    """(3a): 50 ms awaits on hexa's threads pool vs the seed's `asyncio.run` on prefork 2.

    Also against Celery's own threads pool running a blocking 50 ms sleep: the most a
    threads pool of the same size does on this machine, with no event loop at all.
    """
    plan = bench.plan
    _, raw_a, raw_b = prefork(bench)
    threads = bench.worker("hexa", "hexa-threads", pool="threads", concurrency=IO_THREADS)
    raw_threads = bench.worker("raw", "raw-threads", pool="threads", concurrency=IO_THREADS)
    clients = {w: bench.raw_app(w.queue) for w in (raw_a, raw_b, raw_threads)}
    io = bench_tasks.io_sleep.with_options(queue=threads.queue)
    # Warm up both threads pools (threads start on demand, connections per thread), so the
    # blocks measure the steady state the warm prefork workers are already in.
    warm = [io.send().id for _ in range(2 * IO_THREADS)]
    warm += [clients[raw_threads].send_task("bench.sleep_sync").id for _ in range(2 * IO_THREADS)]
    bench.wait_keys(_keys([str(i) for i in warm]), timeout=120)
    arms = [
        Arm("seed", raw_sender(clients[raw_a], "bench.io_sleep"), raw_a),
        Arm("hexa", hexa_sender(io), threads),
        Arm("seed2", raw_sender(clients[raw_b], "bench.io_sleep"), raw_b),
        Arm("threads", raw_sender(clients[raw_threads], "bench.sleep_sync"), raw_threads),
    ]
    counts = {"seed": plan.io_seed, "seed2": plan.io_seed}
    for arm in rotations(arms, 1):
        _throughput_block(bench, arm, counts.get(arm.name, plan.io_block))
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
            note=f"hexa: threads pool, {IO_THREADS} in flight on one loop ({plan.io_block} tasks); "
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
    hexa_worker, raw_a, raw_b = prefork(bench)
    clients = {w: bench.raw_app(w.queue) for w in (raw_a, raw_b)}
    arms = [
        Arm("seed", raw_sender(clients[raw_a], "bench.light", args=[1]), raw_a),
        Arm(
            "hexa",
            hexa_sender(bench_tasks.light.with_options(queue=hexa_worker.queue), 1),
            hexa_worker,
        ),
        Arm("seed2", raw_sender(clients[raw_b], "bench.light", args=[1]), raw_b),
    ]
    for arm in rotations(arms, plan.layer_rounds):
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
        client = bench.raw_app(queue)
        task_id = str(client.send_task(probe, args=[1]).id)
        start = time.perf_counter()
        worker = Worker(kind, root, queue, bench.env, bench.logs)
        bench.workers.append(worker)
        try:
            done = bench.wait_keys(_keys([task_id]), timeout=180)
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
        for arm in rotations(arms, max(2, bench.plan.layer_rounds)):
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
