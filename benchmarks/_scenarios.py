"""Every measurement of `make bench`, in the order it runs: the registry of scenarios."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import hexa
from benchmarks._bench import Bench, Plan
from benchmarks._headline import io_side_by_side, publish_side_by_side, sync_side_by_side
from benchmarks._layer import async_io, async_light, declaration, start_up
from benchmarks._observability import observability
from benchmarks._scale import scale
from benchmarks._stats import Line, Row

#: name -> scenario; `python -m benchmarks --only NAME ...` picks some. Lines (side by side)
#: go to `bench.lines`, the layer-only rows (hexa vs raw Celery with hexa's settings) to
#: `bench.rows`.
SCENARIOS: dict[str, Callable[[Bench], None]] = {
    "sync": sync_side_by_side,  # + burst, latency, and the layer rows of the sync no-op
    "io": io_side_by_side,
    "publish": publish_side_by_side,  # + the kombu floor, typed batch, 16 threads
    "scale": scale,  # issue 12: 64 / 1000 / 5000 in flight, 5000 x 1 s, CPU per task
    "observe": observability,  # metrics and tracing on vs off (benchmarks/_observability.py)
    "light": async_light,
    "seed-io": async_io,
    "start": start_up,
    "declare": declaration,
}
#: Left out of `--quick` (CI): long, and covered by the rows above.
FULL_ONLY = ("seed-io", "declare")


def run(
    plan: Plan, broker: str, backend: str, only: list[str], log: Callable[[str], None]
) -> tuple[list[Line], list[Row]]:
    """Run the chosen scenarios in order; workers, queues and result keys are removed after."""
    with tempfile.TemporaryDirectory(prefix="hexa-bench-") as tmp:
        bench = Bench(plan, broker, backend, Path(tmp), log=log)
        try:
            for name, scenario in SCENARIOS.items():
                if (only and name not in only) or (plan.quick and name in FULL_ONLY):
                    continue
                run_one(bench, name, scenario)
        finally:
            hexa.use_app(None)
            bench.close()
        return bench.lines, bench.rows


def run_one(bench: Bench, name: str, scenario: Callable[[Bench], None]) -> None:
    bench.log(f"bench: {name} ...")
    started = time.perf_counter()
    lines, rows = len(bench.lines), len(bench.rows)
    scenario(bench)
    for found in bench.lines[lines:]:
        bench.log("  " + describe_line(found))
    for row in bench.rows[rows:]:
        bench.log("  " + describe(row))
    bench.log(f"  ({time.perf_counter() - started:.1f}s)")


def describe_line(found: Line) -> str:
    cells = ", ".join(f"{k} {v:,.3g}" for k, v in found.values.items())
    cells += "".join(f", {k}: {why}" for k, why in found.missing.items())
    verdict = ""
    if found.target is not None:
        ratio = "n/a" if found.ratio is None else f"{found.ratio:.2f}"
        mark = {True: "OK", False: "MISSED", None: "not measured"}[found.met]
        verdict = f" | {ratio} vs {found.target.reference} {found.target.op} {found.target.bound:g}"
        verdict += f" {mark}"
    return f"{found.workload} / {found.metric} ({found.unit}): {cells}{verdict}"


def describe(row: Row) -> str:
    aa = f"A/A {row.aa:.2f}" if row.aa is not None else "A/A n/a"
    met = "" if row.met is None else (" OK" if row.met else " MISSED")
    target = f" target {row.target}{met}" if row.target else ""
    return (
        f"{row.metric}: raw {row.raw:.1f} {row.unit}, hexa {row.hexa:.1f} {row.unit}, "
        f"ratio {row.ratio:.2f} ({aa}){target}"
    )
