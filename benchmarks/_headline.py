"""The side-by-side table: hexa's defaults against raw Celery's defaults, Dramatiq and taskiq.

Every system runs on the same RabbitMQ and Redis, on queues of its own, in blocks that
alternate between the systems (the order rotates each round); each figure is the median of
the rounds. Beside them run two raw-Celery twins with hexa's settings ("raw", "raw2"): what
hexa's layer alone costs, and the A/A floor that shows the noise.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks._bench import Bench, rotations
from benchmarks._peers import Client, HexaClient, NotAvailable
from benchmarks._stats import (
    Line,
    Samples,
    Target,
    compare,
    line,
    median,
    per_round,
    percentile,
    ratio_of,
)
from benchmarks._workers import Worker

Pair = tuple[float, float]
PEERS = ("celery", "dramatiq", "taskiq", "hexa")
SYNC = "sync no-op, 2 worker processes, all results read"
IO = "async, await 50 ms, 64 in flight, 1 worker process"
PUBLISH = "publish only, one caller, every message sent before the next"
THREADS = "publish from 16 threads at once"
BURST = "fire-and-forget burst (`-> None` tasks), 2 worker processes"
LATENCY = "latency: one task at a time, publish to result in hand"


@dataclass
class Side:
    """One system in a scenario: its client, its worker, and what each block measured."""

    system: str
    client: Client
    worker: Worker | None = None
    label: str = ""  # e.g. which pool ran hexa's async tasks
    queue: str = ""  # publish-only sides: the queue nobody consumes
    wall: list[Pair] = field(default_factory=list)
    cpu: list[Pair] = field(default_factory=list)
    rabbit: list[Pair] = field(default_factory=list)
    redis: list[Pair] = field(default_factory=list)
    samples: list[float] = field(default_factory=list)


def samples(sides: Sequence[Side], attr: str, only: Sequence[str] = PEERS) -> dict[str, Samples]:
    return {s.system: getattr(s, attr) for s in sides if s.system in only and getattr(s, attr)}


@contextmanager
def client_cpu() -> Iterator[list[float]]:
    """CPU seconds and wall seconds of this process over the block."""
    out: list[float] = []
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    yield out
    out += [time.process_time() - cpu, time.perf_counter() - wall]


def ready(
    bench: Bench, sides: Sequence[Side], kind: str = "noop", args: Sequence[Any] = ()
) -> None:
    """One task through every worker first: start-up is not part of any block."""
    keys = [k for side in sides for k in side.client.send(kind, 1, args)]
    bench.wait_keys(keys, timeout=120)
    bench.forget(keys)


def worker_block(
    bench: Bench,
    side: Side,
    kind: str,
    count: int,
    args: Sequence[Any] = (),
    send: Callable[[Side, int, Sequence[Any]], list[str]] | None = None,
) -> None:
    """Publish `count` tasks, wait for every result; CPU of worker, RabbitMQ and Redis."""
    assert side.worker is not None
    cpu, rabbit, redis = side.worker.cpu(), bench.rabbit.seconds(), bench.redis_clock.seconds()
    start = time.perf_counter()
    keys = send(side, count, args) if send else side.client.send(kind, count, args)
    done = bench.wait_keys(keys, timeout=300)
    time.sleep(0.05)  # the other process may still be acknowledging its last task
    side.wall.append((done - start, count))
    side.cpu.append((side.worker.cpu() - cpu, count))
    side.rabbit.append((bench.rabbit.seconds() - rabbit, count))
    side.redis.append((bench.redis_clock.seconds() - redis, count))
    bench.forget(keys)


# -- sync no-op, burst, latency --------------------------------------------------------


def sync_side_by_side(bench: Bench) -> None:
    """Sync no-op on every system (2 processes each), then the burst and latency rows."""
    plan = bench.plan
    sides = []
    for system in (*PEERS, "raw", "raw2"):
        worker = bench.worker(system, system)
        sides.append(Side(system, bench.client(system, worker.queue), worker))
    batched = bench.worker("hexa", "hexa-batch")
    sides.append(Side("hexa batch", bench.client("hexa", batched.queue), batched))
    ready(bench, sides)
    for side in rotations(sides, plan.rounds):
        send = _in_batch if side.system == "hexa batch" else None
        worker_block(bench, side, "noop", plan.sync_block, send=send)
    bench.lines += sync_lines(bench, sides)
    bench.rows += layer_rows(sides)
    burst(bench, [s for s in sides if s.system in PEERS])
    latency(bench, [s for s in sides if s.system in PEERS])
    bench.stop(*[s.worker for s in sides if s.system in ("celery", "dramatiq", "taskiq")])
    bench.stop(batched)


def _in_batch(side: Side, count: int, args: Sequence[Any]) -> list[str]:
    """The same loop of `.send()` inside `hexa.batch()`: confirmed together at its end."""
    assert isinstance(side.client, HexaClient)
    return side.client.send_batch("noop", count, args)


def sync_lines(bench: Bench, sides: Sequence[Side]) -> list[Line]:
    rate = line(SYNC, "throughput", "tasks/s", samples(sides, "wall"), rate=True)
    rate.target = Target("raw Celery", ">=", 1.0)
    rate.judge(*ratio_of(rate, samples(sides, "wall"), "hexa", "celery", rate=True))
    stretch = line(SYNC, "throughput (stretch: against Dramatiq)", "tasks/s", {})
    stretch.values, stretch.spreads = rate.values, rate.spreads
    stretch.target = Target("Dramatiq", ">=", 0.7)
    stretch.judge(*ratio_of(stretch, samples(sides, "wall"), "hexa", "dramatiq", rate=True))
    batched = line(
        SYNC,
        "throughput, hexa's loop inside `hexa.batch()`",
        "tasks/s",
        {"hexa": samples(sides, "wall", ("hexa batch",)).get("hexa batch", [])},
        rate=True,
        note="the same 'for' loop of `.send()` in one `hexa.batch()`: its confirms waited for "
        "together at the end instead of one round trip per message; the ratio column is against "
        "raw Celery's defaults",
    )
    celery_rate = rate.values.get("celery")
    if celery_rate and "hexa" in batched.values:
        batched.values["celery"] = celery_rate
    found = [rate, batched, stretch]
    for attr, label, bound in (
        ("cpu", "worker CPU per task", 1.0),
        ("rabbit", "RabbitMQ CPU per task", 1.2),
        ("redis", "Redis CPU per task", None),
    ):
        row = line(SYNC, label, "ms", samples(sides, attr))
        if bound is not None:
            row.target = Target("raw Celery", "<=", bound)
        row.judge(*ratio_of(row, samples(sides, attr), "hexa", "celery"))
        found.append(row)
    if not bench.rabbit.visible:
        found[4].missing = dict.fromkeys(PEERS, "beam.smp not visible in /proc")
    in_batch = samples(sides, "rabbit", ("hexa batch", "celery"))
    rabbit = line(
        SYNC,
        "RabbitMQ CPU per task, hexa's loop inside `hexa.batch()`",
        "ms",
        {"celery": in_batch.get("celery", []), "hexa": in_batch.get("hexa batch", [])},
        note="RabbitMQ writes a confirmed persistent message to disk before confirming it: one "
        "confirm per `.send()` pays that per message, a batch shares it",
    )
    return [*found, rabbit]


SETTINGS_NOTE = (
    "raw Celery's `@app.task` no-op both sides: 'raw Celery' with Celery's defaults (ack on "
    "receipt, prefetch 4 per process, no publisher confirms), 'hexa' column with hexa's "
    "settings (acks late, publisher confirms); A/A is raw vs raw2, both with hexa's settings"
)


def layer_rows(sides: Sequence[Side]) -> list[Any]:
    """hexa against raw Celery configured like hexa: the layer's own cost, with its A/A."""
    by = {s.system: s for s in sides}
    hexa, raw, raw2, celery = by["hexa"], by["raw"], by["raw2"], by["celery"]
    scenario = "1. sync no-op, prefork 2"
    rows = [
        compare(
            scenario, "worker CPU per task", "µs", hexa.cpu, raw.cpu, raw2.cpu, target=("<=", 1.03)
        ),
        compare(
            scenario,
            "throughput",
            "tasks/s",
            hexa.wall,
            raw.wall,
            raw2.wall,
            rate=True,
            note="for information: drifts with the machine's load",
        ),
        compare(scenario, "RabbitMQ CPU per task", "µs", hexa.rabbit, raw.rabbit, raw2.rabbit),
        compare(
            scenario,
            "hexa's settings vs Celery's defaults: worker CPU per task",
            "µs",
            raw.cpu,
            celery.cpu,
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
        compare(scenario, "", "", raw2.cpu, raw.cpu),
        compare(scenario, "", "", raw2.wall, raw.wall, rate=True),
    ]
    for row, floor in zip(rows[3:], floors, strict=True):
        row.aa, row.aa_rounds = floor.ratio, floor.rounds
    return rows


def burst(bench: Bench, sides: Sequence[Side]) -> None:
    """`count` fire-and-forget sends, then one task with a result: until it is in hand."""
    count = bench.plan.burst
    publish: dict[str, list[Pair]] = {s.system: [] for s in sides}
    for side in rotations(sides, bench.plan.rounds):
        with client_cpu() as spent:
            side.client.send("noop_none", count)
        publish[side.system].append((spent[1], count))
        keys = side.client.send("noop", 1)
        done = bench.wait_keys(keys)
        side.samples.append(done - time.perf_counter() + spent[1])
        bench.forget(keys)
    drained = {
        s.system: [(t + w, count) for t, (w, _) in zip(s.samples, publish[s.system], strict=True)]
        for s in sides
    }
    bench.lines += [
        line(BURST, f"{count} sends: publish rate", "msgs/s", publish, rate=True),
        line(
            BURST,
            f"{count} sends: until the worker ran them all",
            "tasks/s",
            drained,
            rate=True,
            note="ends when a task with a result, sent right after the burst, "
            "has its result; taskiq stores a result even for `-> None`",
        ),
    ]
    for side in sides:
        side.samples.clear()


def latency(bench: Bench, sides: Sequence[Side]) -> None:
    for side in rotations(sides, bench.plan.rounds):
        for _ in range(bench.plan.latency):
            start = time.perf_counter()
            side.client.roundtrip()
            side.samples.append(time.perf_counter() - start)
    for q in (50, 99):
        row = line(LATENCY, f"p{q}", "ms", {})
        for side in sides:
            row.values[side.system] = percentile(side.samples, q) * 1e3
        if q == 50:
            row.note = "each library's own wait: taskiq's `wait_result` polls every 0.2 s"
        bench.lines.append(row)


# -- async I/O at 64 in flight ---------------------------------------------------------


def hexa_async_worker(bench: Bench, prefix: str, inflight: int) -> tuple[Worker, str]:
    """`hexa worker --pool asyncio --concurrency N`, or `NotAvailable` saying why (once a run)."""
    if bench.unavailable.get("asyncio"):
        raise NotAvailable(bench.unavailable["asyncio"])
    worker = bench.worker("hexa", prefix, pool="asyncio", concurrency=inflight)
    client = HexaClient(worker.queue)
    try:
        bench.wait_keys(client.send("io_wait", 1, (0.0,)), timeout=60)
    except (RuntimeError, TimeoutError) as error:
        bench.stop(worker)
        reason = str(error).strip().splitlines()[-1][:160]
        bench.unavailable["asyncio"] = f"`--pool asyncio` not available: {reason}"
        raise NotAvailable(bench.unavailable["asyncio"]) from None
    return worker, "asyncio pool"


def io_side_by_side(bench: Bench) -> None:
    """50 ms awaits, 64 in flight on one process of each system."""
    plan, sides = bench.plan, []
    for system in ("celery", "dramatiq", "taskiq"):
        worker = bench.worker(system, f"io-{system}", inflight=64)
        sides.append(Side(system, bench.client(system, worker.queue), worker))
    try:
        worker, label = hexa_async_worker(bench, "io-hexa", 64)
    except NotAvailable as why:
        worker, label = bench.worker("hexa", "io-hexa", inflight=64), f"threads pool ({why})"
    sides.append(Side("hexa", bench.client("hexa", worker.queue), worker, label))
    ready(bench, sides, "io_wait", (0.05,))
    warm = [k for s in sides for k in s.client.send("io_wait", 64, (0.05,))]
    bench.wait_keys(warm)
    bench.forget(warm)
    for side in rotations(sides, plan.rounds):
        worker_block(bench, side, "io_wait", plan.io_block, (0.05,))
    rate = line(
        IO,
        "throughput",
        "tasks/s",
        samples(sides, "wall"),
        rate=True,
        note="raw Celery: threads pool of 64 awaiting on one persistent anyio portal; "
        f"Dramatiq: AsyncIO middleware, 64 threads; taskiq: --max-async-tasks 64 (and its "
        "broker's prefetch raised from 10 to 64); "
        f"hexa: {sides[-1].label}",
    )
    rate.target = Target("Dramatiq", ">=", 1.0)
    rate.judge(*ratio_of(rate, samples(sides, "wall"), "hexa", "dramatiq", rate=True))
    cpu = line(IO, "worker CPU per task", "ms", samples(sides, "cpu"))
    cpu.judge(*ratio_of(cpu, samples(sides, "cpu"), "hexa", "celery"))
    bench.lines += [rate, cpu]
    bench.stop(*[s.worker for s in sides if s.worker is not None])


# -- publishing ------------------------------------------------------------------------


def publish_block(bench: Bench, side: Side, count: int, send: Callable[[], Any]) -> None:
    rabbit = bench.rabbit.seconds()
    with client_cpu() as spent:
        send()
    side.rabbit.append((bench.rabbit.seconds() - rabbit, count))
    side.wall.append((spent[1], count))
    side.cpu.append((spent[0], count))
    bench.purge(side.queue)


def publish_side_by_side(bench: Bench) -> None:
    """Publish only (no worker): one caller at a time, then a typed batch, then 16 threads."""
    plan = bench.plan
    sides = []
    for system in ("floor", *PEERS, "raw", "raw2", "hexa batch"):
        queue = bench.queue(f"pub-{system.replace(' ', '-')}")
        sides.append(Side(system, bench.client(system.split()[0], queue), queue=queue))
    for side in sides:  # connect, declare, warm caches
        side.client.send("noop", 20)
        bench.purge(side.queue)
    batch_missing = ""
    for side in rotations(sides, plan.rounds):
        if side.system == "hexa batch":
            try:
                publish_block(
                    bench, side, plan.batch, lambda c=side.client: c.send_batch("noop", plan.batch)
                )
            except NotAvailable as why:
                batch_missing = str(why)
            continue
        count = plan.publish_block
        publish_block(bench, side, count, lambda s=side, n=count: s.client.send("noop", n))
    bench.lines += publish_lines(bench, sides, batch_missing)
    bench.rows += publish_layer_rows(sides)
    threads_side_by_side(bench)


def publish_lines(bench: Bench, sides: Sequence[Side], batch_missing: str) -> list[Line]:
    count = bench.plan.publish_block
    walls = samples(sides, "wall", ("floor", *PEERS, "hexa batch"))
    rate = line(
        PUBLISH,
        f"{count} messages: msgs/s",
        "msgs/s",
        {k: v for k, v in walls.items() if k in PEERS},
        rate=True,
        note="raw Celery's defaults and Dramatiq's publish without confirms; taskiq "
        "(aio-pika) and hexa wait for each confirm",
    )
    floor = line(PUBLISH, "", "", {"floor": walls.get("floor", [])}, rate=True)
    rate.target = Target("the kombu + confirms floor", ">=", 0.9, floor.values.get("floor"))
    rate.judge(*_ratio_across(walls, "hexa", "floor"))
    cpu = line(PUBLISH, "client CPU per message", "ms", samples(sides, "cpu", PEERS))
    cpu.judge(*ratio_of(cpu, samples(sides, "cpu"), "hexa", "celery"))
    rabbit = line(
        PUBLISH,
        "RabbitMQ CPU per message",
        "ms",
        samples(sides, "rabbit", PEERS),
        note="what a confirm costs the broker: it writes each persistent message to disk "
        "before confirming it; compare the floor's and the batch's rows below",
    )
    floor_line = line(
        PUBLISH,
        "bare kombu producer + confirms, Celery-shaped persistent message (the floor)",
        "msgs/s",
        {},
        note="no task layer at all: what a confirmed publish costs one at a time on this broker",
    )
    floor_line.values = {"floor": floor.values.get("floor", float("nan"))}
    batch = line(
        "typed batch send",
        f"`with hexa.batch()`: {bench.plan.batch} `.send()`, all confirmed before the block exits",
        "msgs/s",
        {"hexa": walls.get("hexa batch", [])},
        rate=True,
    )
    batch.target = Target("raw Celery's one-at-a-time `send_task`", ">=", 3.0)
    if batch_missing:
        batch.missing = {"hexa": batch_missing}
    batch.judge(*_ratio_across(walls, "hexa batch", "celery"))
    floor_rabbit = line(
        PUBLISH,
        "RabbitMQ CPU per message: the floor (confirmed one at a time), and hexa's batch",
        "ms",
        {},
    )
    for system, found in samples(sides, "rabbit", ("floor", "hexa batch")).items():
        floor_rabbit.values["floor" if system == "floor" else "hexa"] = median(per_round(found))
    floor_rabbit.note = "first column: the bare kombu floor; 'hexa': `hexa.batch()`"
    return [rate, cpu, rabbit, floor_line, batch, floor_rabbit]


def _ratio_across(
    walls: dict[str, Samples], top: str, bottom: str
) -> tuple[float | None, list[float]]:
    """Rates of two arms with different block sizes: the ratio of their median rates."""
    from benchmarks._stats import median, per_round

    if not walls.get(top) or not walls.get(bottom):
        return None, []
    a, b = per_round(walls[top], rate=True), per_round(walls[bottom], rate=True)
    return median(a) / median(b), [x / y for x, y in zip(a, b, strict=False)]


def publish_layer_rows(sides: Sequence[Side]) -> list[Any]:
    by = {s.system: s for s in sides}
    scenario = "2. publish, client side"
    return [
        compare(
            scenario,
            "client CPU per publish",
            "µs",
            by["hexa"].cpu,
            by["raw"].cpu,
            by["raw2"].cpu,
            target=("<=", 0.75),
            note="raw Celery with hexa's settings (confirms, Redis result backend)",
        ),
        compare(
            scenario,
            "client CPU per publish: raw with Celery's defaults vs raw",
            "µs",
            by["celery"].cpu,
            by["raw"].cpu,
            by["raw2"].cpu,
            note="the 'hexa' column is raw Celery with Celery's defaults (no publisher "
            "confirms): what confirms cost raw Celery",
        ),
    ]


def threads_side_by_side(bench: Bench) -> None:
    """16 threads calling `.send()` / `send_task` at once, one client per system."""
    count, sides = bench.plan.threads_block, []
    for system in ("celery", "dramatiq", "hexa"):
        queue = bench.queue(f"threads-{system}")
        sides.append(Side(system, bench.client(system, queue), queue=queue))
    for side in sides:
        _threads(side, 32)
        bench.purge(side.queue)
    for side in rotations(sides, bench.plan.rounds):
        publish_block(bench, side, count, lambda s=side: _threads(s, count))
    rate = line(THREADS, f"{count} messages: msgs/s", "msgs/s", samples(sides, "wall"), rate=True)
    rate.target = Target("raw Celery's `send_task` from 16 threads", ">=", 2.0)
    rate.judge(*ratio_of(rate, samples(sides, "wall"), "hexa", "celery", rate=True))
    cpu = line(THREADS, "client CPU per message", "ms", samples(sides, "cpu"))
    cpu.judge(*ratio_of(cpu, samples(sides, "cpu"), "hexa", "celery"))
    bench.lines += [rate, cpu]


def _threads(side: Side, count: int, threads: int = 16) -> None:
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            side.client.send("noop", count // threads)
        except BaseException as error:  # reported below, not lost in a thread
            errors.append(error)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
