"""Celery's task events (what Flower and `celery events` show), without passwords.

A `task-failed` or `task-retried` event carries the exception's text and traceback: a task
that raised with the broker's URL in its message would publish the password to anyone
watching events. The app's event dispatcher redacts every string field first.
"""

from __future__ import annotations

from typing import Any

from hexa._events import EventDispatcher, Events
from hexa._settings import redact_value


class RedactingDispatcher(EventDispatcher):
    """`EventDispatcher` whose events carry no broker or backend password."""

    def send(self, type: str, *args: Any, **fields: Any) -> Any:
        return super().send(type, *args, **redact_value(fields))


class HexaEvents(Events):
    """The app's events (`hexa._events`), dispatched by `RedactingDispatcher`."""

    dispatcher_cls = f"{__name__}:RedactingDispatcher"
