"""The app path for Celery's own tools: `celery -A hexa.celery_app inspect registered`.

Importing this module does what `hexa worker` does before it starts: it puts the current
directory first on `sys.path`, discovers its `modules` package and builds the Celery app with
every task, from the same settings (RABBITMQ_URL, REDIS_URL, HEXA_DEFAULT_QUEUE, `.env`).
Run Celery's commands from the project's root, where `modules/` is:

    celery -A hexa.celery_app inspect registered -d <worker hostname>
    celery -A hexa.celery_app events                 # workers send task events; Flower too
    celery -A hexa.celery_app purge -Q <queue>

Nothing in hexa imports this module: only Celery's command line does, through `-A`.
"""

from __future__ import annotations

from hexa._cli import discover

app, report = discover()

__all__ = ["app", "report"]
