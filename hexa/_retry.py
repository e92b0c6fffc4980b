"""Retry policies and the arithmetic Celery applies to them.

A policy is declared on the task (`@module_task(retry=Backoff(...))`) and compiled into the
Celery options of the seed's advanced format. `retry_delay` spells out Celery's arithmetic
so it can be unit-tested and documented apart from the code that applies it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

from hexa._exceptions import InvalidPolicyError

#: RabbitMQ closes a channel whose message stays unacknowledged for 30 minutes (its default
#: `consumer_timeout`); with late acks a retry waiting for its countdown is such a message
#: (celery issue 6760). Delays are kept a minute below that.
MAX_RETRY_DELAY = 30 * 60 - 60

ExceptionTypes: TypeAlias = tuple[type[BaseException], ...]


def _check_on(on: ExceptionTypes) -> None:
    if not on:
        raise InvalidPolicyError(
            "on=() retries nothing; list the exception types to retry, e.g. on=(ConnectionError,)"
        )
    for exc_type in on:
        if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
            raise InvalidPolicyError(f"on= takes exception classes; got {exc_type!r}")


def _check_count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidPolicyError(f"{name}={value!r}: must be a whole number >= {minimum}")


def _check_delay(name: str, value: int) -> None:
    if value > MAX_RETRY_DELAY:
        raise InvalidPolicyError(
            f"{name}={value}s: RabbitMQ drops a worker's channel when a message waits unacked "
            f"30 minutes; keep retry delays <= {MAX_RETRY_DELAY}s, or use a periodic task "
            "for work that should run much later"
        )


@attrs.frozen
class Backoff:
    """Exponential backoff: wait `min(max, base * 2**retries)` seconds, full jitter by default."""

    max_retries: int = 5
    base: int = 1
    max: int = 600
    jitter: bool = True
    on: ExceptionTypes = attrs.field(default=(Exception,), converter=tuple)

    def __attrs_post_init__(self) -> None:
        _check_count("max_retries", self.max_retries, 0)
        _check_count("base", self.base, 1)
        _check_count("max", self.max, 1)
        if self.max < self.base:
            raise InvalidPolicyError(
                f"max={self.max} is below base={self.base}: every delay would be capped to max; "
                "raise max or lower base"
            )
        _check_delay("max", self.max)
        _check_on(self.on)


@attrs.frozen
class FixedDelay:
    """Retry after the same `delay` seconds each time."""

    delay: int = 60
    max_retries: int = 3
    on: ExceptionTypes = attrs.field(default=(Exception,), converter=tuple)

    def __attrs_post_init__(self) -> None:
        _check_count("delay", self.delay, 0)
        _check_count("max_retries", self.max_retries, 0)
        _check_delay("delay", self.delay)
        _check_on(self.on)


RetryPolicy: TypeAlias = Backoff | FixedDelay


def celery_retry_options(policy: RetryPolicy) -> dict[str, Any]:
    """Compile a policy into the Celery options of the seed's advanced format."""
    if isinstance(policy, Backoff):
        return {
            "autoretry_for": policy.on,
            "retry_kwargs": {"max_retries": policy.max_retries},
            # Celery reads retry_backoff=True as a factor of 1; an int is the factor itself.
            "retry_backoff": True if policy.base == 1 else policy.base,
            "retry_backoff_max": policy.max,
            "retry_jitter": policy.jitter,
        }
    return {
        "autoretry_for": policy.on,
        "max_retries": policy.max_retries,
        "default_retry_delay": policy.delay,
    }


def retry_delay(policy: RetryPolicy, retries: int, rng: random.Random | None = None) -> int:
    """Seconds Celery waits before retry number `retries + 1` (`retries` counts from 0).

    Backoff: `min(max, base * 2**retries)`; with jitter a uniform whole number from 0 to that
    value ("full jitter"), so a retry may fire at once. FixedDelay: always `delay`.
    """
    if isinstance(policy, FixedDelay):
        return policy.delay
    countdown: int = min(policy.max, policy.base * int(2**retries))
    if policy.jitter:
        countdown = (rng or random.Random()).randrange(countdown + 1)
    return countdown


def retry_summary(config: Mapping[str, Any]) -> str:
    """One line describing the retry behaviour of a task's Celery options, or ''."""
    on = config.get("autoretry_for")
    if not on:
        return ""
    names = ", ".join(exc.__name__ for exc in on)
    retries = config.get("retry_kwargs", {}).get("max_retries", config.get("max_retries", 3))
    backoff = config.get("retry_backoff", False)
    if backoff:
        base = 1 if backoff is True else backoff
        cap = config.get("retry_backoff_max", 600)
        jitter = ", full jitter" if config.get("retry_jitter", True) else ""
        return f"retry {retries}x on {names}: backoff {base}s*2^n up to {cap}s{jitter}"
    delay = config.get("default_retry_delay", 180)
    return f"retry {retries}x on {names}: every {delay}s"
