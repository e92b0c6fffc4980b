"""Periodic tasks: what `schedule=` takes, checked when a task is declared.

Celery Beat's table and state file, built from the discovered tasks, are in `hexa._beat`.
"""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import TypeAlias

from celery.schedules import BaseSchedule

from hexa._exceptions import ConfigurationError

#: What `schedule=` takes: a Celery schedule (`crontab(minute=0)`, `solar(...)`), a timedelta,
#: or seconds.
Schedule: TypeAlias = BaseSchedule | timedelta | float

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _seconds(schedule: object, where: str) -> float | None:
    """The interval of a timedelta or a number; None for Celery's own schedules."""
    if isinstance(schedule, BaseSchedule):
        return None
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, int | float) and not isinstance(schedule, bool):
        return float(schedule)
    raise ConfigurationError(
        f"schedule={schedule!r} for {where}: give a celery.schedules.crontab, a timedelta or "
        "seconds, e.g. schedule=crontab(minute=0) or schedule=timedelta(minutes=5)"
    )


def check_schedule(schedule: object, signature: inspect.Signature, where: str) -> None:
    """Refuse a schedule Beat cannot run: a bad interval, or required arguments."""
    seconds = _seconds(schedule, where)
    if seconds is not None and not seconds > 0:
        raise ConfigurationError(
            f"schedule={schedule!r} for {where}: the interval must be > 0 seconds"
        )
    required = [
        name
        for name, param in signature.parameters.items()
        if param.default is inspect.Parameter.empty and param.kind not in _VARIADIC
    ]
    if required:
        raise ConfigurationError(
            f"{where} has schedule= but requires {', '.join(required)}: Beat calls it with no "
            "arguments; give those parameters defaults, or drop schedule="
        )
