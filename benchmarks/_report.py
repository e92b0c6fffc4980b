"""The committed result: a Markdown table and a PNG chart under docs/, with machine facts."""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from pathlib import Path

from benchmarks._stats import Line, Row, spread

METHOD = """\
How it is measured: one run, every system on the same RabbitMQ and Redis (queues of its own,
deleted afterwards), real worker processes, in blocks that alternate between the systems
(the order rotates each round); each figure is the median of the rounds. Each system keeps its
own defaults: raw Celery as `Celery(broker, backend)` with only a queue name, `celery worker`
with no flags; Dramatiq's RabbitMQ broker with its Results middleware (Redis) so results can
be read, AsyncIO middleware for async actors; taskiq with taskiq-aio-pika and taskiq-redis,
names only changed; hexa as `hexa worker` and `.send()`. CPU is the OS's figure (per-thread
`schedstat`): the worker's whole process group, this client's `process_time()`, RabbitMQ's
`beam.smp` and `redis-server` (shared services: other work on the machine lands in them
too, which is why blocks alternate). "All results read": a block ends when every task's
result is in Redis."""

LAYER_METHOD = """\
hexa against raw Celery configured with hexa's own settings (acks late, confirms, JSON): what
the layer alone costs. Beside every hexa/raw ratio stands an A/A ratio, a second raw-Celery
twin measured the same way against the first: a ratio inside the A/A spread is noise."""

COLUMNS = {
    "celery": "raw Celery (its defaults)",
    "dramatiq": "Dramatiq",
    "taskiq": "taskiq",
    "hexa": "hexa (its defaults)",
}


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def _ratio(value: float | None, rounds: Sequence[float]) -> str:
    if value is None:
        return "-"
    extra = f" ({spread(rounds)})" if len(rounds) > 1 else ""
    return f"**{value:.2f}**{extra}" if rounds is not None else f"{value:.2f}"


def _target(row: Row) -> str:
    """The target and whether it is met; a miss the A/A run makes too is flagged as noise."""
    if not row.target:
        return ""
    if row.met:
        return f"{row.target} ✅"
    op, bound = row.target.split()
    limit = float(bound.rstrip("x"))
    aa_misses = row.aa is not None and (row.aa > limit if op == "<=" else row.aa < limit)
    return f"{row.target} ❌" + (" (A/A misses it too: noise)" if aa_misses else "")


class Notes:
    """Footnotes numbered in order of first use, each text once."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if not text:
            return ""
        if text not in self.texts:
            self.texts.append(text)
        return f" [{self.texts.index(text) + 1}]"

    def lines(self) -> list[str]:
        return [f"{i}. {text}" for i, text in enumerate(self.texts, 1)]


def _cell(found: Line, system: str, notes: Notes) -> str:
    if system in found.missing:
        return "n/a" + notes.mark(found.missing[system])
    value = found.values.get(system)
    if value is None:
        return ""
    return f"{_fmt(value)}" + (f" ({found.spreads[system]})" if found.spreads.get(system) else "")


def verdict(found: Line) -> str:
    """`0.62x raw Celery; target >= 1.0x ❌`, or the figure itself for absolute targets."""
    target = found.target
    if target is None:
        return ""
    if found.ratio is None:
        return f"{target.op} {target.bound:g} vs {target.reference}: not measured"
    mark = "✅" if found.met else "❌"
    if target.reference == "seconds":
        return f"{found.ratio:.2f} s, target {target.op} {target.bound:g} s {mark}"
    ref = target.reference + (f" ({_fmt(target.value)})" if target.value else "")
    return f"**{found.ratio:.2f}x** {ref}; target {target.op} {target.bound:g}x {mark}"


def side_by_side(lines: Sequence[Line], notes: Notes) -> list[str]:
    out = [
        "| workload | measure | " + " | ".join(COLUMNS.values()) + " | hexa / raw Celery "
        "| target |",
        "|---|---|" + "---:|" * len(COLUMNS) + "---|---|",
    ]
    for found in lines:
        cells = " | ".join(_cell(found, system, notes) for system in COLUMNS)
        ratio = found.vs_celery
        cells += f" | {ratio:.2f}x" if ratio is not None else " | "
        floor = found.values.get("floor")
        if floor is not None:
            cells = f"{_fmt(floor)} (not Celery: the floor)" + cells[cells.index(" |") :]
        metric = f"{found.metric} ({found.unit}){notes.mark(found.note)}"
        reason = notes.mark(found.reason) if found.met is False else ""
        out.append(f"| {found.workload} | {metric} | {cells} | {verdict(found)}{reason} |")
    return out


def layer_table(rows: Sequence[Row], notes: Notes) -> list[str]:
    out = [
        "| # | measure | raw Celery, hexa's settings | hexa | hexa / raw (rounds) "
        "| A/A raw / raw (rounds) | target |",
        "|---|---|---:|---:|---|---|---|",
    ]
    for row in rows:
        out.append(
            f"| {row.scenario.split('.')[0]} | {row.metric}{notes.mark(row.note)} "
            f"| {_fmt(row.raw)} {row.unit} | {_fmt(row.hexa)} {row.unit} "
            f"| {_ratio(row.ratio, row.rounds)} | {_ratio(row.aa, row.aa_rounds)} "
            f"| {_target(row)} |"
        )
    return out


def markdown(
    lines: Sequence[Line],
    rows: Sequence[Row],
    facts: dict[str, str],
    quick: bool,
    chart: str | None,
    findings: str = "",
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# hexa against raw Celery, Dramatiq and taskiq", ""]
    mode = "`make bench QUICK=1` (small blocks: a smoke run)" if quick else "`make bench`"
    out += [f"Generated by {mode} on {now}.", ""]
    out += ["| machine | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in facts.items()]
    out += ["", METHOD, "", "## Side by side, each with its own defaults", ""]
    notes = Notes()
    out += side_by_side(lines, notes)
    out += [
        "",
        "Values are medians of the rounds (their spread in brackets). For CPU and "
        "latency lower is better; for rates higher is better.",
        "",
    ]
    if chart:
        out += [f"![hexa and its peers, relative to raw Celery's defaults]({chart})", ""]
    out += ["## The layer alone", "", LAYER_METHOD, ""]
    out += layer_table(rows, notes)
    out += ["", "## Notes", "", *notes.lines()]
    if findings:
        out += ["", findings]
    return "\n".join(out) + "\n"


def chart(lines: Sequence[Line], path: Path, title: str) -> None:
    """Per row, each system's figure relative to raw Celery's defaults (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [f for f in lines if f.values.get("celery")]
    systems = [("dramatiq", "#6a1b9a"), ("taskiq", "#00838f"), ("hexa", "#2e7d32")]
    fig, ax = plt.subplots(figsize=(11, 0.75 * len(shown) + 1.8))
    height = 0.8 / len(systems)
    for index, (system, color) in enumerate(systems):
        y = [len(shown) - i - 1 + (1 - index) * height for i in range(len(shown))]
        ratios = [f.values.get(system, math.nan) / f.values["celery"] for f in shown]
        ax.barh(y, ratios, height=height, color=color, label=COLUMNS[system])
        for yy, r in zip(y, ratios, strict=True):
            if not math.isnan(r):
                ax.text(r * 1.03, yy, f"{r:.2f}", va="center", fontsize=7)
    labels = [f"{f.workload[:38]}: {f.metric[:30]} ({f.unit})".replace("`", "") for f in shown]
    ax.set_yticks(range(len(shown))[::-1], labels, fontsize=8)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel(
        "relative to raw Celery with its defaults (log scale; for CPU and latency "
        "lower is better, for rates higher)"
    )
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
