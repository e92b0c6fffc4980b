"""Periodic tasks: what `schedule=` takes, checked when declared, and Celery Beat's table."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from celery.schedules import BaseSchedule

from hexa._exceptions import ConfigurationError
from hexa._logging import get_logger

if TYPE_CHECKING:
    from hexa._definitions import TaskDefinition
    from hexa._settings import Settings

log = get_logger()

#: What `schedule=` takes: a Celery schedule (`crontab(minute=0)`, `solar(...)`), a timedelta,
#: or seconds.
Schedule: TypeAlias = BaseSchedule | timedelta | float

#: Name of Celery Beat's state file under `.hexa/` (the last run of every entry).
SCHEDULE_FILE = "celerybeat-schedule"

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


def beat_schedule(found: Iterable[TaskDefinition]) -> dict[str, dict[str, Any]]:
    """Celery's `beat_schedule`: one entry per periodic task, named after the task."""
    return {
        d.name: {"task": d.name, "schedule": d.schedule} for d in found if d.schedule is not None
    }


def schedule_file(settings: Settings) -> Path:
    """Beat's state file, `.hexa/celerybeat-schedule`; its folder is created when missing."""
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings.home / SCHEDULE_FILE


def log_beat_schedule(found: Iterable[TaskDefinition]) -> None:
    """One `beat.schedule` event: what Beat will send, and how often."""
    entries = {name: repr(entry["schedule"]) for name, entry in beat_schedule(found).items()}
    if not entries:
        log.warning("beat.empty", hint="no task declares schedule=; Beat will send nothing")
    log.info("beat.schedule", count=len(entries), entries=entries)
