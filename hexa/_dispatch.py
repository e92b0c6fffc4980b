"""Publishing: the one place a message leaves the process.

On RabbitMQ every publish waits for the broker's confirm. A publish that fails (broker
restarting, connection blocked by a resource alarm) is retried with the same task id until
`Settings.publish_timeout` runs out, then `PublishError` says so: `send()` either returns
once the broker holds the message, or raises; it never hangs and never drops silently.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from amqp.exceptions import AMQPError, MessageNacked
from celery import Celery
from celery.result import AsyncResult
from kombu.exceptions import KombuError
from kombu.utils.url import maybe_sanitize_url

from hexa._app import current_app
from hexa._exceptions import PublishError
from hexa._options import SendOptions
from hexa._result import TaskResult
from hexa._settings import DEFAULT_PUBLISH_TIMEOUT

#: What a publish raises when the broker is unreachable or does not confirm.
BROKER_ERRORS: tuple[type[BaseException], ...] = (KombuError, OSError, AMQPError, MessageNacked)
#: Longest wait for one confirm; the publish deadline bounds the attempts together.
CONFIRM_TIMEOUT = 5.0
_PAUSE = 0.5  # between attempts while the broker is away
#: kombu's own retry is off: a failed attempt drops its connection, the next one reconnects.
_NO_KOMBU_RETRY = {"max_retries": 0}


def publish(
    name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    options: SendOptions,
    default_queue: str | None = None,
    app: Celery | None = None,
) -> TaskResult[Any]:
    """Publish a checked call as a plain Celery message any Celery worker accepts."""
    celery_options = options.for_celery()
    if default_queue and "queue" not in celery_options:
        celery_options["queue"] = default_queue
    app = app or current_app()
    celery_options["task_id"] = str(uuid.uuid4())  # the same id on every attempt
    return TaskResult(send_confirmed(app, name, list(args), dict(kwargs), celery_options))


def _publish_timeout(app: Celery) -> float:
    settings = getattr(app, "hexa_settings", None)
    return float(getattr(settings, "publish_timeout", DEFAULT_PUBLISH_TIMEOUT))


def send_confirmed(
    app: Celery, name: str, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]
) -> AsyncResult[Any]:
    """`app.send_task` retried until the broker confirms, or `PublishError` at the deadline."""
    timeout = _publish_timeout(app)
    deadline = time.monotonic() + timeout
    while True:
        confirm = max(0.5, min(CONFIRM_TIMEOUT, deadline - time.monotonic()))
        try:
            return app.send_task(
                name,
                args=args,
                kwargs=kwargs,
                confirm_timeout=confirm,
                retry_policy=_NO_KOMBU_RETRY,
                **options,
            )
        except BROKER_ERRORS as error:
            if time.monotonic() + _PAUSE >= deadline:
                raise _publish_error(app, name, timeout, error) from None
        time.sleep(_PAUSE)


def _publish_error(app: Celery, name: str, timeout: float, error: BaseException) -> PublishError:
    broker = maybe_sanitize_url(app.conf.broker_url or "")
    return PublishError(
        f"{name}: the broker at {broker} did not confirm the message within {timeout:g}s "
        f"({type(error).__name__}: {error}); it may not have been queued. Check that RabbitMQ "
        "is up and not blocking publishers (disk or memory alarm), then send it again"
    )
