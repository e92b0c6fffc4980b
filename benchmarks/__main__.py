"""`python -m benchmarks [--quick] [--out DIR] [--only NAME ...]` (what `make bench` runs)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import celery
import kombu
import redis

from benchmarks._report import chart, markdown
from benchmarks._scenarios import SCENARIOS, Plan, run
from benchmarks._system import machine_facts

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
        "libraries": f"Celery {celery.__version__}, kombu {kombu.__version__}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small blocks, under a minute")
    parser.add_argument("--out", type=Path, help="folder for benchmarks.md/.png/.json")
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), default=[])
    args = parser.parse_args()
    out: Path = args.out or Path("build/bench-quick" if args.quick else "docs")
    broker = os.environ.get("RABBITMQ_URL") or BROKER
    backend = os.environ.get("REDIS_URL") or BACKEND
    facts = {**machine_facts(), **service_versions(broker, backend)}
    started = time.perf_counter()
    rows = run(Plan.make(args.quick), broker, backend, args.only, log=print)
    facts["run took"] = f"{time.perf_counter() - started:.0f} s"
    out.mkdir(parents=True, exist_ok=True)
    chart(rows, out / "benchmarks.png", "hexa / raw Celery, same run, alternating blocks")
    (out / "benchmarks.md").write_text(markdown(rows, facts, args.quick, "benchmarks.png"))
    data = {"facts": facts, "rows": [r.as_dict() for r in rows]}
    (out / "benchmarks.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
    print(f"bench: wrote {out / 'benchmarks.md'} and {out / 'benchmarks.png'}")
    missed = [r.metric for r in rows if r.met is False]
    if missed:
        print("bench: targets missed: " + "; ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
