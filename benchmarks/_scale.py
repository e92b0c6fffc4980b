"""Async at scale (issue 12): thousands of awaits in flight on one worker process.

hexa's `hexa worker --pool asyncio --concurrency N` against taskiq (`--max-async-tasks N`)
and Dramatiq (AsyncIO middleware, 64 threads: its way to run async actors). Until the
asyncio pool exists, hexa's cells say "pool not available" and the peers are still measured
in the full run (not in QUICK, to keep CI short).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from benchmarks._bench import Bench, rotations
from benchmarks._headline import Side, hexa_async_worker, ready, samples, worker_block
from benchmarks._peers import HexaClient, NotAvailable, TaskiqClient
from benchmarks._stats import Line, Target, line, ratio_of

SCALE = "async at scale: await 50 ms, one worker process"
IO = (0.05,)


def fast_send(side: Side, count: int, args: Sequence[float]) -> list[str]:
    """Publishing as fast as each library allows, so the worker is what is measured."""
    client = side.client
    if isinstance(client, HexaClient):
        try:
            return client.send_batch("io_wait", count, args)
        except NotAvailable:
            return client.send("io_wait", count, args)
    if isinstance(client, TaskiqClient):
        return client.send_concurrently("io_wait", count, args)
    return client.send("io_wait", count, args)


def scale(bench: Bench) -> None:
    try:
        hexa_worker, _ = hexa_async_worker(bench, "scale-hexa-64", 64)
    except NotAvailable as why:
        missing = str(why)
        if bench.plan.quick:  # CI: say so and move on
            bench.lines += unavailable_lines(bench, missing)
            return
        bench.lines += unavailable_lines(bench, missing)[-2:]  # the peers' rows follow
        hexa_worker = None
    else:
        missing = ""
    dramatiq = bench.worker("dramatiq", "scale-dramatiq", inflight=64)
    fixed = Side("dramatiq", bench.client("dramatiq", dramatiq.queue), dramatiq)
    for inflight in bench.plan.scale_inflight:
        bench.lines.append(inflight_line(bench, fixed, inflight, hexa_worker, missing))
        hexa_worker = None  # the 64 one is used once; larger N start their own
    bench.stop(dramatiq)
    if not missing:
        bench.lines += [long_awaits(bench), cpu_per_task(bench)]


def unavailable_lines(bench: Bench, missing: str) -> list[Line]:
    lines = []
    for inflight in bench.plan.scale_inflight:
        row = line(SCALE, f"{inflight} in flight: throughput", "tasks/s", {})
        row.missing = {"hexa": missing}
        if inflight == 64:
            row.target = Target("Dramatiq", ">=", 1.0)
        lines.append(row)
    long = line(
        SCALE,
        f"{bench.plan.scale_long} tasks awaiting 1 s: last result after the last publish",
        "s",
        {},
    )
    long.target, long.missing = Target("seconds", "<=", 3.0), {"hexa": missing}
    cpu = line(SCALE, "1000 in flight: worker CPU per task, asyncio pool / threads pool", "ms", {})
    cpu.target, cpu.missing = Target("the threads pool", "<", 1.0), {"hexa": missing}
    return [*lines, long, cpu]


def inflight_line(
    bench: Bench, dramatiq: Side, inflight: int, hexa_worker: object, missing: str
) -> Line:
    count = max(bench.plan.io_block, 3 * inflight)
    taskiq = bench.worker("taskiq", f"scale-taskiq-{inflight}", inflight=inflight)
    sides = [dramatiq, Side("taskiq", bench.client("taskiq", taskiq.queue), taskiq)]
    if not missing:
        worker = hexa_worker or hexa_async_worker(bench, f"scale-hexa-{inflight}", inflight)[0]
        sides.append(Side("hexa", bench.client("hexa", worker.queue), worker))  # type: ignore[union-attr]
    ready(bench, sides, "io_wait", IO)
    for side in rotations(sides, bench.plan.scale_rounds):
        worker_block(bench, side, "io_wait", count, IO, send=fast_send)
    row = line(
        SCALE,
        f"{inflight} in flight: throughput",
        "tasks/s",
        samples(sides, "wall"),
        rate=True,
        note="Dramatiq: AsyncIO middleware, 64 threads whatever N; taskiq: "
        "--max-async-tasks N, broker prefetch N; hexa: --pool asyncio --concurrency N",
    )
    if missing:
        row.missing = {"hexa": missing}
    if inflight == 64:
        row.target = Target("Dramatiq", ">=", 1.0)
        row.judge(*ratio_of(row, samples(sides, "wall"), "hexa", "dramatiq", rate=True))
    dramatiq.wall.clear(), dramatiq.cpu.clear(), dramatiq.rabbit.clear(), dramatiq.redis.clear()
    bench.stop(*[s.worker for s in sides[1:] if s.worker is not None])
    return row


def long_awaits(bench: Bench) -> Line:
    """N tasks each awaiting 1 s, on one process with N in flight: done how soon after?"""
    count = bench.plan.scale_long
    worker, _ = hexa_async_worker(bench, "scale-hexa-long", count)
    side = Side("hexa", bench.client("hexa", worker.queue), worker)
    ready(bench, [side], "io_wait", IO)
    keys = fast_send(side, count, (1.0,))
    published = time.perf_counter()
    done = bench.wait_keys(keys, timeout=300)
    bench.forget(keys)
    bench.stop(worker)
    row = line(
        SCALE,
        f"{count} tasks awaiting 1 s: last result after the last publish",
        "s",
        {},
        note="1 s is the floor: every task awaits 1 s after it starts",
    )
    row.values["hexa"] = done - published
    row.target = Target("seconds", "<=", 3.0)
    row.judge(done - published)
    return row


def cpu_per_task(bench: Bench, inflight: int = 1000) -> Line:
    """Worker CPU per 50 ms task at 1000 in flight: the asyncio pool against threads."""
    asyncio_worker, _ = hexa_async_worker(bench, "scale-cpu-asyncio", inflight)
    threads_worker = bench.worker("hexa", "scale-cpu-threads", inflight=inflight)
    sides = [
        Side("hexa", bench.client("hexa", asyncio_worker.queue), asyncio_worker),
        Side("threads", bench.client("hexa", threads_worker.queue), threads_worker),
    ]
    ready(bench, sides, "io_wait", IO)
    count = max(bench.plan.io_block, 3 * inflight)
    for side in rotations(sides, bench.plan.scale_rounds):
        worker_block(bench, side, "io_wait", count, IO, send=fast_send)
    found = samples(sides, "cpu", ("hexa", "threads"))
    row = line(
        SCALE,
        f"{inflight} in flight: worker CPU per task, asyncio pool / threads pool",
        "ms",
        {"hexa": found["hexa"]},
        note="the 'hexa' cell is the asyncio pool; the target compares it with hexa's "
        f"threads pool at --concurrency {inflight}",
    )
    row.target = Target("the threads pool", "<", 1.0)
    fake = {"hexa": found["hexa"], "threads": found["threads"]}
    probe = line("", "", "", fake)
    row.judge(*ratio_of(probe, fake, "hexa", "threads"))
    bench.stop(asyncio_worker, threads_worker)
    return row
