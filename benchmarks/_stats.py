"""Ratios of alternating blocks, each with the A/A ratio that shows the noise floor."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the samples."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Row:
    """One line of the table: hexa (or the arm named) against raw Celery, with its A/A floor."""

    scenario: str
    metric: str
    unit: str
    raw: float
    hexa: float
    ratio: float
    rounds: list[float] = field(default_factory=list)
    aa: float | None = None
    aa_rounds: list[float] = field(default_factory=list)
    target: str = ""
    met: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def spread(values: Sequence[float]) -> str:
    if not values:
        return ""
    return f"{min(values):.3g}-{max(values):.3g}"


Samples = Sequence[tuple[float, float]]  # per round: (cost in seconds, units done)


def _value(samples: Samples, scale: float, rate: bool) -> float:
    cost, units = sum(c for c, _ in samples), sum(u for _, u in samples)
    if not cost or not units:
        return float("nan")
    return units / cost if rate else cost / units * scale


def _rounds(a: Samples, b: Samples, scale: float, rate: bool) -> list[float]:
    return [_value([x], scale, rate) / _value([y], scale, rate) for x, y in zip(a, b, strict=False)]


def compare(
    scenario: str,
    metric: str,
    unit: str,
    hexa: Samples,
    raw: Samples,
    raw2: Samples | None = None,
    *,
    scale: float = 1e6,
    rate: bool = False,
    target: tuple[str, float] | None = None,
    note: str = "",
) -> Row:
    """A row from per-round (cost, units) samples of each arm, run in alternating blocks.

    The value is cost per unit x `scale` (e.g. CPU us per task) or, with `rate`, units per
    second of cost (throughput). `target` is (">=" or "<=", bound) on hexa/raw.
    """
    raw_value = _value(raw, scale, rate)
    row = Row(
        scenario=scenario,
        metric=metric,
        unit=unit,
        raw=raw_value,
        hexa=_value(hexa, scale, rate),
        ratio=_value(hexa, scale, rate) / raw_value,
        rounds=_rounds(hexa, raw, scale, rate),
        note=note,
    )
    if raw2 is not None:
        row.aa = _value(raw2, scale, rate) / raw_value
        row.aa_rounds = _rounds(raw2, raw, scale, rate)
    if target is not None:
        op, bound = target
        row.target = f"{op} {bound:g}x"
        row.met = row.ratio <= bound if op == "<=" else row.ratio >= bound
    return row


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


#: The systems of the side-by-side table, in column order.
SYSTEMS = ("celery", "dramatiq", "taskiq", "hexa")


@dataclass
class Target:
    """`hexa / reference op bound`, e.g. hexa / raw Celery >= 1.0."""

    reference: str  # a label: "raw Celery", "Dramatiq", "the kombu floor", "seconds"
    op: str  # ">=" or "<="
    bound: float
    value: float | None = None  # the reference's own figure, when it has no column

    def met(self, value: float) -> bool:
        checks = {">=": value >= self.bound, "<=": value <= self.bound, "<": value < self.bound}
        return checks[self.op]


@dataclass
class Line:
    """One row of the side-by-side table: a value per system (medians of the rounds)."""

    workload: str
    metric: str
    unit: str
    values: dict[str, float] = field(default_factory=dict)
    spreads: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # system -> why no value
    target: Target | None = None
    ratio: float | None = None  # what the target compares (hexa / reference)
    ratio_rounds: list[float] = field(default_factory=list)
    met: bool | None = None
    note: str = ""
    reason: str = ""  # a missed target's measured reason

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def vs_celery(self) -> float | None:
        hexa, celery = self.values.get("hexa"), self.values.get("celery")
        if hexa is None or not celery:
            return None
        return hexa / celery

    def judge(self, ratio: float | None, rounds: Sequence[float] = ()) -> None:
        self.ratio, self.ratio_rounds = ratio, list(rounds)
        if self.target is not None and ratio is not None and not math.isnan(ratio):
            self.met = self.target.met(ratio)


def latest(lines: Sequence[Line]) -> list[Line]:
    """One line per (workload, measure): a later line replaces an earlier one in place."""
    keyed = {(f.workload, f.metric): f for f in lines}
    seen: set[tuple[str, str]] = set()
    out = []
    for found in lines:
        key = (found.workload, found.metric)
        if key not in seen:
            seen.add(key)
            out.append(keyed[key])
    return out


def per_round(samples: Samples, scale: float = 1e3, rate: bool = False) -> list[float]:
    """Each round's own value: cost per unit x scale, or units per second with `rate`."""
    return [_value([sample], scale, rate) for sample in samples]


def line(
    workload: str,
    metric: str,
    unit: str,
    samples: dict[str, Samples],
    *,
    scale: float = 1e3,
    rate: bool = False,
    note: str = "",
) -> Line:
    """A row from per-round (cost, units) samples of each system: medians of the rounds."""
    row = Line(workload, metric, unit, note=note)
    for system, found in samples.items():
        values = per_round(found, scale, rate)
        if values:
            row.values[system] = median(values)
            row.spreads[system] = spread(values)
    return row


def ratio_of(
    row: Line, samples: dict[str, Samples], top: str, bottom: str, rate: bool = False
) -> tuple[float | None, list[float]]:
    """median(top) / median(bottom), and the per-round ratios (same round, same order)."""
    if top not in row.values or not row.values.get(bottom):
        return None, []
    a, b = per_round(samples[top], rate=rate), per_round(samples[bottom], rate=rate)
    return row.values[top] / row.values[bottom], [x / y for x, y in zip(a, b, strict=False)]
