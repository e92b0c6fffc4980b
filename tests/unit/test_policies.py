"""Retry policies compile to exactly the Celery options of the seed's advanced format."""

from __future__ import annotations

import random

import pytest

from hexa import Backoff, FixedDelay, InvalidPolicyError, celery_retry_options, retry_delay


class TestCeleryRetryOptions:
    def test_backoff_matches_the_seed_example(self) -> None:
        assert celery_retry_options(Backoff(max_retries=5, max=600, jitter=True)) == {
            "autoretry_for": (Exception,),
            "retry_kwargs": {"max_retries": 5},
            "retry_backoff": True,
            "retry_backoff_max": 600,
            "retry_jitter": True,
        }

    def test_backoff_base_is_celerys_factor(self) -> None:
        assert celery_retry_options(Backoff(base=3, max=60))["retry_backoff"] == 3

    def test_fixed_delay_matches_the_seed_example(self) -> None:
        policy = FixedDelay(delay=60, max_retries=3, on=(ConnectionError, TimeoutError))
        assert celery_retry_options(policy) == {
            "autoretry_for": (ConnectionError, TimeoutError),
            "max_retries": 3,
            "default_retry_delay": 60,
        }


class TestRetryDelay:
    def test_backoff_doubles_up_to_max(self) -> None:
        policy = Backoff(base=1, max=10, jitter=False)
        assert [retry_delay(policy, n) for n in range(6)] == [1, 2, 4, 8, 10, 10]

    def test_full_jitter_draws_from_zero_to_the_backoff(self) -> None:
        policy = Backoff(base=2, max=600, jitter=True)
        draws = [retry_delay(policy, 3, random.Random(seed)) for seed in range(200)]
        assert min(draws) == 0
        assert max(draws) <= 16
        assert len(set(draws)) > 8

    def test_fixed_delay_is_constant(self) -> None:
        assert {retry_delay(FixedDelay(delay=7), n) for n in range(5)} == {7}


class TestValidation:
    @pytest.mark.parametrize(
        ("make", "message"),
        [
            (lambda: Backoff(max_retries=-1), "max_retries=-1"),
            (lambda: Backoff(base=0), "base=0"),
            (lambda: Backoff(base=10, max=5), "below base"),
            (lambda: Backoff(on=()), "retries nothing"),
            (lambda: Backoff(on=(str,)), "exception classes"),  # type: ignore[arg-type]
            (lambda: FixedDelay(delay=-1), "delay=-1"),
        ],
    )
    def test_impossible_policies_name_the_fix(self, make, message: str) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(InvalidPolicyError, match=message):
            make()
