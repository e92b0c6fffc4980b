"""Prometheus metrics: `hexa worker --metrics-port PORT`, and opt-in publish metrics.

Worker (served at `http://HOST:PORT/metrics`, every pool process counted together):

- `hexa_tasks_total{task, outcome}`: counter; outcome `succeeded`, `failed` (for good, after
  its retries), `retried` (an attempt that asked for a retry), `dead_lettered` (sent to the
  dead-letter queue: failed for good, or a message the worker cannot run).
- `hexa_task_duration_seconds{task}`: histogram of each attempt's run time.
- `hexa_tasks_in_flight{task}`: gauge of tasks running now.
- the publish metrics below, for tasks the worker's tasks send.

Client (after `enable_client_metrics()`, or with `HEXA_CLIENT_METRICS=1`):

- `hexa_publishes_total{task, outcome}`: counter; outcome `confirmed` or `failed`.
- `hexa_publish_duration_seconds{task}`: histogram of the time to the broker's confirm.

Label values are task names and outcomes only, never arguments. A worker labels only the
tasks it registered; any other name that comes off the wire is `task="other"`, so a sender
cannot grow the set of series. A client labels its first 1,000 distinct task names.

prometheus_client (pure Python, no dependencies) is a dependency of hexa, imported only here.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from hexa import _hooks
from hexa._exceptions import ConfigurationError
from hexa._metrics_folder import MULTIPROC_ENV, private_folder

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from hexa._metrics import PublishMetrics

__all__ = [
    "METRICS_PORT_ENV",
    "enable_client_metrics",
    "metrics_port",
    "serve_worker_metrics",
]

METRICS_PORT_ENV = "HEXA_METRICS_PORT"
_client: PublishMetrics | None = None
_lock = threading.Lock()


def metrics_port(flag: int | None, environ: dict[str, str] | None = None) -> int | None:
    """`--metrics-port`, else `HEXA_METRICS_PORT`, else None (no metrics)."""
    if flag is not None:
        return flag
    text = (environ if environ is not None else os.environ).get(METRICS_PORT_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > 65535:
        raise ConfigurationError(
            f"{METRICS_PORT_ENV}={text!r}: give a port number, e.g. {METRICS_PORT_ENV}=9540"
        )
    return int(text)


def serve_worker_metrics(port: int, addr: str = "0.0.0.0") -> int:
    """Count this worker's tasks and serve them at `/metrics`; returns the bound port.

    Call it before anything imports prometheus_client (the `hexa worker` command does): it
    gives the worker a private `PROMETHEUS_MULTIPROC_DIR` (inside the one you set, if any),
    removed when the worker exits, so prefork children's counts add up in one answer.
    """
    path = private_folder()
    from hexa import _metrics

    bound, _ = _metrics.serve(port, addr, path)
    enable_client_metrics(registry=None)
    return bound


def enable_client_metrics(registry: CollectorRegistry | None = None) -> None:
    """Count this process's publishes (`hexa_publishes_total`, `hexa_publish_duration_seconds`).

    They go in `registry`, by default prometheus_client's global one, which the application's
    own `/metrics` endpoint serves. Calling it again changes nothing.
    """
    global _client
    from prometheus_client import REGISTRY

    from hexa._metrics import PublishMetrics

    with _lock:  # two threads' first .send() at once must not register the metrics twice
        if _client is not None:
            return
        chosen = REGISTRY if registry is None and MULTIPROC_ENV not in os.environ else registry
        _client = PublishMetrics(chosen)
        _hooks.on_publish(_client.observe)
