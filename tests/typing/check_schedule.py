"""Checked by mypy only (`make lint`): what `schedule=` and `retry=` accept."""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab

from hexa import Backoff, FixedDelay, module_task


@module_task(module="typing_demo", schedule=crontab(minute=0))
def hourly() -> None:
    return None


@module_task(module="typing_demo", schedule=timedelta(minutes=5))
def every_five_minutes() -> None:
    return None


@module_task(module="typing_demo", schedule=30, retry=FixedDelay(delay=5, on=ValueError))
def every_thirty_seconds() -> None:
    return None


Backoff(on=(ConnectionError, TimeoutError))
Backoff(on=("ConnectionError",))  # type: ignore[arg-type]
module_task(module="typing_demo", schedule="*/5 * * * *")  # type: ignore[call-overload]
