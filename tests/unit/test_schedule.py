"""`schedule=`: checked when declared, emitted as Celery Beat's table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from celery.schedules import crontab

from hexa import ConfigurationError, module_task
from hexa._beat import beat_schedule
from hexa._definitions import definitions
from hexa._spec import TaskSpec


def nightly() -> str:
    return "done"


def needs(company_id: int, dry_run: bool = False) -> None:
    return None


def spec(func: Any = nightly, **options: Any) -> TaskSpec:
    return TaskSpec(func=func, module="reports", name=func.__name__, **options)


class TestScheduleChecks:
    @pytest.mark.parametrize(
        "schedule", [crontab(minute=0), timedelta(minutes=5), 30, 0.5], ids=repr
    )
    def test_crontab_timedelta_and_seconds_are_accepted(self, schedule: Any) -> None:
        assert spec(schedule=schedule).schedule is schedule

    @pytest.mark.parametrize("schedule", [0, -1, timedelta(0), timedelta(seconds=-5)], ids=repr)
    def test_an_interval_that_is_not_positive_is_refused(self, schedule: Any) -> None:
        with pytest.raises(ConfigurationError, match="must be > 0 seconds"):
            spec(schedule=schedule)

    @pytest.mark.parametrize("schedule", ["*/5 * * * *", True, [60]], ids=repr)
    def test_other_values_are_refused_naming_what_works(self, schedule: Any) -> None:
        with pytest.raises(ConfigurationError, match=r"give a celery.schedules.crontab, a timed"):
            spec(schedule=schedule)

    def test_a_periodic_task_with_required_arguments_is_refused_at_declaration(self) -> None:
        with pytest.raises(ConfigurationError, match=r"requires company_id: Beat calls it with"):
            module_task(module="reports", schedule=60)(needs)

    def test_a_bound_task_needs_no_argument_besides_the_task(self) -> None:
        def bound(task: Any, limit: int = 10) -> None:
            return None

        assert spec(bound, bind=True, schedule=60).schedule == 60

    def test_a_hand_written_schedule_is_checked_too(self) -> None:
        services = {"reports_tasks": {"needs": {"task": needs, "config": {"schedule": 60}}}}
        with pytest.raises(ConfigurationError, match="requires company_id"):
            definitions(services)


class TestBeatSchedule:
    def test_the_declared_schedule_is_emitted_in_the_seeds_config(self) -> None:
        every = timedelta(seconds=30)
        assert spec(schedule=every).config() == {"schedule": every}

    def test_one_entry_per_periodic_task_named_after_it(self) -> None:
        every = timedelta(minutes=1)
        services = {
            "reports_tasks": {
                "nightly": {"task": nightly, "config": {"schedule": every}},
                "needs": needs,
            }
        }
        table = beat_schedule(definitions(services))
        assert table == {"reports.nightly": {"task": "reports.nightly", "schedule": every}}
