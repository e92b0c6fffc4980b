"""Celery Beat's side of periodic tasks: its table, its state file and its start-up log.

What `schedule=` takes, and the checks on it when a task is declared, live in
`hexa._schedule`; this module runs after discovery, on the definitions it found.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hexa._definitions import TaskDefinition
from hexa._logging import get_logger
from hexa._settings import Settings

log = get_logger()

#: Name of Celery Beat's state file under `.hexa/` (the last run of every entry).
SCHEDULE_FILE = "celerybeat-schedule"


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
