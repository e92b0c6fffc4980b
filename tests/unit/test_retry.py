"""Retry policies: their checks, their arithmetic, and what Celery 5.7 does with them."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import celery.utils.time
import pytest
from celery import Celery

from hexa import Backoff, FixedDelay, InvalidPolicyError, celery_retry_options, retry_delay
from hexa._celery_task import HexaTask
from hexa._definitions import definitions
from hexa._locator import ServiceLocator
from hexa._retry import MAX_RETRY_DELAY, check_retry_delays, retry_summary
from hexa._settings import Settings
from hexa._worker import create_celery_worker

EMBEDDED = Settings.from_env(environ={}, cwd=Path("/nonexistent"))
RABBITMQ = attrs.evolve(EMBEDDED, broker_url="amqp://guest:guest@127.0.0.1:5672//")


class Flaky(Exception):
    pass


class TestRetryDelay:
    def test_backoff_doubles_from_base_up_to_max(self) -> None:
        policy = Backoff(base=1, max=600, jitter=False)
        delays = [retry_delay(policy, n) for n in range(12)]
        assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]

    def test_base_is_the_factor_and_max_caps_it(self) -> None:
        policy = Backoff(base=3, max=20, jitter=False)
        assert [retry_delay(policy, n) for n in range(5)] == [3, 6, 12, 20, 20]

    def test_full_jitter_is_a_uniform_draw_from_zero_to_the_cap(self) -> None:
        policy = Backoff(base=2, max=100, jitter=True)
        for retries, cap in [(0, 2), (3, 16), (9, 100)]:
            expected = random.Random(retries).randrange(cap + 1)
            assert retry_delay(policy, retries, random.Random(retries)) == expected

    def test_full_jitter_can_fire_a_retry_at_once(self) -> None:
        policy = Backoff(base=1, max=600, jitter=True)
        draws = {retry_delay(policy, 0, random.Random(seed)) for seed in range(30)}
        assert draws == {0, 1}

    def test_matches_celerys_own_function_draw_for_draw(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        policy = Backoff(base=2, max=300, jitter=True)
        monkeypatch.setattr(celery.utils.time, "random", random.Random(42))
        theirs = [
            celery.utils.time.get_exponential_backoff_interval(2, n, 300, full_jitter=True)
            for n in range(10)
        ]
        ours_rng = random.Random(42)
        assert [retry_delay(policy, n, ours_rng) for n in range(10)] == theirs

    def test_fixed_delay_never_changes(self) -> None:
        policy = FixedDelay(delay=7, max_retries=3)
        assert {retry_delay(policy, n) for n in range(5)} == {7}


@pytest.fixture
def app() -> Iterator[Celery]:
    celery_app = Celery("retry_unit", broker="memory://", backend="cache+memory://")
    celery_app.conf.task_always_eager = False
    yield celery_app
    celery_app.close()


def retry_call(
    app: Celery, options: dict[str, Any], error: BaseException, retries: int
) -> dict[str, Any] | None:
    """Run Celery's autoretry wrapper for attempt `retries + 1`; the kwargs of `task.retry`."""
    calls: list[dict[str, Any]] = []

    def failing() -> None:
        raise error

    task = app.task(name=f"unit.t{len(app.tasks)}", base=HexaTask, shared=False, **options)(failing)

    def fake_retry(**kwargs: Any) -> Exception:
        calls.append(kwargs)
        return RuntimeError("retried")

    task.retry = fake_retry
    task.push_request(retries=retries, id="t")
    try:
        task.run()
    except RuntimeError:
        pass
    except type(error):
        return None
    finally:
        task.pop_request()
    return calls[0]


class TestCeleryAppliesTheCompiledOptions:
    def test_backoff_countdown_is_retry_delay_with_the_same_random_draws(
        self, app: Celery, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        policy = Backoff(max_retries=4, base=2, max=40, jitter=True, on=(Flaky,))
        options = celery_retry_options(policy)
        for retries in range(6):
            monkeypatch.setattr(celery.utils.time, "random", random.Random(retries))
            call = retry_call(app, options, Flaky("x"), retries)
            assert call is not None
            assert call["countdown"] == retry_delay(policy, retries, random.Random(retries))
            assert call["max_retries"] == 4

    def test_backoff_max_above_celerys_600s_default_is_kept(self, app: Celery) -> None:
        policy = Backoff(base=1, max=900, jitter=False, on=(Flaky,))
        call = retry_call(app, celery_retry_options(policy), Flaky("x"), 10)
        assert call is not None
        assert call["countdown"] == 900 == retry_delay(policy, 10)

    def test_fixed_delay_uses_default_retry_delay_and_max_retries(self, app: Celery) -> None:
        options = celery_retry_options(FixedDelay(delay=5, max_retries=2, on=(Flaky,)))
        call = retry_call(app, options, Flaky("x"), 0)
        assert call is not None
        assert "countdown" not in call  # Celery's task.retry falls back to default_retry_delay
        task = app.tasks[f"unit.t{len(app.tasks) - 1}"]
        assert (task.default_retry_delay, task.max_retries) == (5, 2)

    def test_an_unlisted_error_is_raised_without_a_retry(self, app: Celery) -> None:
        options = celery_retry_options(Backoff(on=(Flaky,)))
        assert retry_call(app, options, KeyError("not listed"), 0) is None

    def test_celery_ignores_backoff_without_autoretry_for(self, app: Celery) -> None:
        def plain() -> None:
            raise Flaky

        task = app.task(name="unit.plain", shared=False, retry_backoff=True)(plain)
        assert not hasattr(task, "_orig_run")  # no autoretry wrapper: Flaky just fails


def bad(policy: Callable[[], object], match: str) -> Any:
    return pytest.param(policy, match, id=match[:40])


class TestPolicyChecks:
    @pytest.mark.parametrize(
        ("make", "match"),
        [
            bad(lambda: Backoff(max_retries=-1), r"max_retries=-1: .* >= 0, e.g. max_retries=1"),
            bad(lambda: Backoff(base=0), r"base=0: .*seconds >= 1"),
            bad(lambda: Backoff(base=1.5), r"base=1.5: must be a whole number"),  # type: ignore[arg-type]
            bad(lambda: Backoff(max=0), r"max=0: .* >= 1"),
            bad(lambda: Backoff(base=10, max=5), r"max=5 is below base=10.*raise max or lower"),
            bad(lambda: Backoff(jitter="yes"), r"jitter='yes': give True or False"),  # type: ignore[arg-type]
            bad(lambda: Backoff(on=()), r"on=\(\) retries nothing.*on=\(ConnectionError,\)"),
            bad(lambda: Backoff(on=("ValueError",)), r"got 'ValueError': import the class"),  # type: ignore[arg-type]
            bad(lambda: Backoff(on=(int,)), r"got <class 'int'>"),  # type: ignore[arg-type]
            bad(lambda: Backoff(on="ValueError"), r"on='ValueError': give exception classes"),  # type: ignore[arg-type]
            bad(lambda: FixedDelay(delay=-1), r"delay=-1: .*seconds >= 0"),
            bad(lambda: FixedDelay(max_retries=True), r"max_retries=True"),
        ],
    )
    def test_a_policy_that_cannot_work_is_refused_with_the_fix(
        self, make: Callable[[], object], match: str
    ) -> None:
        with pytest.raises(InvalidPolicyError, match=match):
            make()

    def test_a_single_exception_class_is_read_as_a_tuple(self) -> None:
        assert Backoff(on=Flaky).on == (Flaky,)
        assert FixedDelay(on=[Flaky, KeyError]).on == (Flaky, KeyError)

    def test_delays_of_hours_are_declared_freely_the_broker_decides_later(self) -> None:
        assert FixedDelay(delay=86400).delay == 86400
        assert Backoff(max=7200).max == 7200
        assert FixedDelay(delay=0).delay == 0  # retry at once


class TestRetryDelaysPerBroker:
    """A worker holds a retry's message only where the broker has no delay topology."""

    def test_a_long_default_retry_delay_is_refused_on_the_embedded_broker_naming_the_task(
        self,
    ) -> None:
        config = {"autoretry_for": (Flaky,), "default_retry_delay": 3600}
        services = {"billing_tasks": {"charge": {"task": print, "config": config}}}
        locator = ServiceLocator()
        for name, service in services.items():
            locator.register(name, service)
        with pytest.raises(
            InvalidPolicyError,
            match=r"billing\.charge: default_retry_delay=3600s is longer than 1740s: .*"
            r"consumer_timeout.*RABBITMQ_URL=amqp://",
        ):
            create_celery_worker(locator, EMBEDDED)

    def test_the_same_long_delay_is_accepted_on_rabbitmq(self) -> None:
        config = {"autoretry_for": (Flaky,), "default_retry_delay": 3600}
        check_retry_delays(config, "x", RABBITMQ)
        [found] = definitions({"billing_tasks": {"charge": {"task": print, "config": config}}})
        assert found.options["default_retry_delay"] == 3600

    def test_a_long_backoff_cap_is_refused_only_when_backoff_is_on(self) -> None:
        check_retry_delays({"retry_backoff": False, "retry_backoff_max": 7200}, "x", EMBEDDED)
        with pytest.raises(InvalidPolicyError, match="retry_backoff_max=7200s"):
            check_retry_delays({"retry_backoff": True, "retry_backoff_max": 7200}, "x", EMBEDDED)

    def test_a_policy_at_the_limit_passes_and_one_above_it_does_not(self) -> None:
        check_retry_delays(celery_retry_options(FixedDelay(delay=MAX_RETRY_DELAY)), "x", EMBEDDED)
        above = celery_retry_options(Backoff(max=MAX_RETRY_DELAY + 1))
        with pytest.raises(InvalidPolicyError, match=r"x: retry_backoff_max=1741s .* <= 1740s"):
            check_retry_delays(above, "x", EMBEDDED)

    def test_the_seeds_own_config_passes(self) -> None:
        seed = celery_retry_options(Backoff(max_retries=5, max=600, jitter=True))
        check_retry_delays(seed, "seed", EMBEDDED)
        assert seed == {
            "autoretry_for": (Exception,),
            "retry_kwargs": {"max_retries": 5},
            "retry_backoff": True,
            "retry_backoff_max": 600,
            "retry_jitter": True,
        }


class TestRetrySummary:
    def test_backoff_summary_names_the_arithmetic(self) -> None:
        summary = retry_summary(celery_retry_options(Backoff(max_retries=2, base=2, max=60)))
        assert summary == "retry 2x on Exception: backoff 2s*2^n up to 60s, full jitter"

    def test_fixed_summary_names_the_delay(self) -> None:
        summary = retry_summary(celery_retry_options(FixedDelay(delay=5, on=(Flaky,))))
        assert summary == "retry 3x on Flaky: every 5s"
