"""Send a task by name from a plain Celery client, as the seed's shell example does.

The client knows nothing of hexa or of the task's code: only its name. Start a worker first
(`make worker` with RABBITMQ_URL and REDIS_URL set), then, from the repository root:

    RABBITMQ_URL=amqp://guest:guest@localhost:5672// REDIS_URL=redis://localhost:6379/0 \\
        python examples/plain_client.py

A plain Celery client cannot reach the embedded default broker (it lives in `.hexa/` with
transport options only hexa sets); there, use `hexa send invoicing.emit_invoice --wait`.
"""

from __future__ import annotations

import os
import sys

from celery import Celery


def client() -> Celery:
    """`Celery("hexa_worker", broker=..., backend=...)`, exactly as in the seed."""
    broker, backend = os.environ.get("RABBITMQ_URL"), os.environ.get("REDIS_URL")
    if not broker or not backend:
        sys.exit("set RABBITMQ_URL and REDIS_URL (the worker's broker and result backend)")
    app = Celery("hexa_worker", broker=broker, backend=backend)
    # Only needed when the worker consumes another queue than Celery's default `celery`.
    app.conf.task_default_queue = os.environ.get("HEXA_DEFAULT_QUEUE") or "celery"
    return app


def main() -> None:
    app = client()
    try:
        result = app.send_task("invoicing.emit_invoice")
        print(result.get(timeout=30))  # 'Factura emitida!'
        sent = app.send_task("notifications.send_notification", args=[123, "Hello!"])
        print(sent.get(timeout=30))  # 'Sent'
    finally:
        app.close()


if __name__ == "__main__":
    main()
