"""`python -m benchmarks [--quick] [--out DIR] [--only NAME ...]` (what `make bench` runs)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import metadata
from pathlib import Path

import kombu
import redis

from benchmarks._bench import Plan
from benchmarks._readme import update_readme
from benchmarks._report import chart, markdown
from benchmarks._scenarios import SCENARIOS, run
from benchmarks._stats import Line, Row, Target, latest
from benchmarks._system import machine_facts

FINDINGS = Path(__file__).with_name("findings.md")

BROKER = "amqp://guest:guest@127.0.0.1:5672//"
BACKEND = "redis://127.0.0.1:6379/0"


def service_versions(broker: str, backend: str) -> dict[str, str]:
    with kombu.Connection(broker) as conn:
        conn.connect()
        props = conn.connection.server_properties
        rabbit = props.get("version", "?")
    client = redis.Redis.from_url(backend)
    try:
        redis_version = str(client.info("server").get("redis_version", "?"))
    finally:
        client.close()
    return {
        "services": f"RabbitMQ {rabbit}, Redis {redis_version}",
        "libraries": ", ".join(
            f"{name} {metadata.version(name)}"
            for name in ("celery", "kombu", "dramatiq", "taskiq", "taskiq-aio-pika", "taskiq-redis")
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small blocks, about 2 minutes")
    parser.add_argument("--out", type=Path, help="folder for benchmarks.md/.png/.json")
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), default=[])
    parser.add_argument(
        "--render", type=Path, help="write the report again from a run's benchmarks.json"
    )
    args = parser.parse_args()
    out: Path = args.out or Path("build/bench-quick" if args.quick else "docs")
    if args.render:
        return render(*load(args.render), out, args.quick, readme=not args.quick)
    broker = os.environ.get("RABBITMQ_URL") or BROKER
    backend = os.environ.get("REDIS_URL") or BACKEND
    facts = {**machine_facts(), **service_versions(broker, backend)}
    facts["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    started = time.perf_counter()
    lines, rows = run(Plan.make(args.quick), broker, backend, args.only, log=print)
    facts["load average at end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    facts["run took"] = f"{time.perf_counter() - started:.0f} s"
    return render(lines, rows, facts, out, args.quick, readme=not args.quick and not args.only)


def load(path: Path) -> tuple[list[Line], list[Row], dict[str, str]]:
    data = json.loads(path.read_text())
    lines = [Line(**{**f, "target": Target(**f["target"]) if f["target"] else None})
             for f in data["lines"]]  # fmt: skip
    return lines, [Row(**r) for r in data["rows"]], data["facts"]


def render(
    lines: list[Line],
    rows: list[Row],
    facts: dict[str, str],
    out: Path,
    quick: bool,
    readme: bool,
) -> int:
    """benchmarks.md, .png and .json in `out`; README's table after a full run."""
    lines = latest(lines)
    out.mkdir(parents=True, exist_ok=True)
    chart(lines, out / "benchmarks.png", "each system relative to raw Celery's defaults, one run")
    findings = FINDINGS.read_text() if FINDINGS.exists() else ""
    (out / "benchmarks.md").write_text(
        markdown(lines, rows, facts, quick, "benchmarks.png", findings)
    )
    data = {
        "facts": facts,
        "lines": [f.as_dict() for f in lines],
        "rows": [r.as_dict() for r in rows],
    }
    (out / "benchmarks.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
    print(f"bench: wrote {out / 'benchmarks.md'} and {out / 'benchmarks.png'}")
    if readme:
        update_readme(Path("README.md"), lines, facts)
        print("bench: README.md's Performance table regenerated")
    missed = [f"{f.workload} / {f.metric}" for f in lines if f.met is False]
    missed += [r.metric for r in rows if r.met is False]
    if missed:
        print("bench: targets missed: " + "; ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
