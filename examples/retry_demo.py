"""Watch a task retry: it fails twice with ConnectionError, then succeeds.

Run it from the repository root with `python examples/retry_demo.py`. No server is needed:
the task runs on a real Celery worker inside this process (`hexa.testing.in_process_worker`,
on Celery's in-memory broker). A worker on RabbitMQ logs the same `task.retry` events.

Expected output (times vary a little):

    task.retry  attempt=1 delay=1s error=ConnectionError: ERP unreachable (attempt 1)
    task.retry  attempt=2 delay=1s error=ConnectionError: ERP unreachable (attempt 2)
    task.succeeded after 3 attempts: invoice 42 synced
"""

from __future__ import annotations

import itertools
from typing import Any

from hexa import FixedDelay, module_task
from hexa.testing import capture_logs, in_process_worker

_attempts = itertools.count(1)


@module_task(module="retry_demo", retry=FixedDelay(delay=1, max_retries=3, on=(ConnectionError,)))
def sync_invoice(invoice_id: int) -> str:
    """Stands in for a call to a flaky ERP: down for the first two attempts."""
    attempt = next(_attempts)
    if attempt < 3:
        raise ConnectionError(f"ERP unreachable (attempt {attempt})")
    return f"invoice {invoice_id} synced"


def main() -> list[dict[str, Any]]:
    """Run the task on an in-process worker; print and return its `task.*` events."""
    with capture_logs() as logs, in_process_worker(None):  # None: the tasks declared here
        result = sync_invoice.send(42).get(timeout=30)
    for event in logs.named("task.retry"):
        print(f"task.retry  attempt={event['attempt']} delay={event['delay']}s "
              f"error={event['error']}")  # fmt: skip
    attempts = 1 + len(logs.named("task.retry"))
    print(f"task.succeeded after {attempts} attempts: {result}")
    return [event for event in logs if str(event.get("event")).startswith("task.")]


if __name__ == "__main__":
    main()
