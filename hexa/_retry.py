"""Retry policies and the arithmetic Celery applies to them.

A policy is declared on the task (`@module_task(retry=Backoff(...))`) and compiled into the
Celery options of the seed's advanced format. `retry_delay` spells out Celery's arithmetic
so it can be unit-tested and documented apart from the code that applies it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import attrs

from hexa._delays import MAX_HELD_DELAY, held_delay_refusal
from hexa._exceptions import InvalidPolicyError
from hexa._settings import Settings

#: A retry is a new message with an ETA. On RabbitMQ it waits on the broker (`hexa._delays`),
#: whatever its length. Elsewhere a worker takes it at once and holds it unacknowledged until
#: it is due, and RabbitMQ closes a channel whose message stays unacknowledged 30 minutes
#: (celery issue 6760): there, retry delays are kept a minute below that, checked when the
#: worker starts (`check_retry_delays`), when the broker is known.
MAX_RETRY_DELAY = MAX_HELD_DELAY

ExceptionTypes: TypeAlias = tuple[type[BaseException], ...]


def _exception_types(
    value: type[BaseException] | Iterable[type[BaseException]],
) -> ExceptionTypes:
    """`on=ValueError` is read as `on=(ValueError,)`; anything else must be iterable."""
    if isinstance(value, type):
        return (value,)
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise InvalidPolicyError(
            f"on={value!r}: give exception classes, e.g. on=(ConnectionError, TimeoutError)"
        )
    return tuple(value)


def _check_on(on: ExceptionTypes) -> None:
    if not on:
        raise InvalidPolicyError(
            "on=() retries nothing; list the exception types to retry, e.g. on=(ConnectionError,)"
        )
    for exc_type in on:
        if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
            raise InvalidPolicyError(
                f"on= takes exception classes; got {exc_type!r}: "
                "import the class and list it, e.g. on=(ConnectionError,)"
            )


def _check_count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidPolicyError(
            f"{name}={value!r}: must be a whole number of "
            + ("retries" if name == "max_retries" else "seconds")
            + f" >= {minimum}, e.g. {name}={max(minimum, 1)}"
        )


@attrs.frozen
class Backoff:
    """Exponential backoff: wait `min(max, base * 2**retries)` seconds, full jitter by default."""

    max_retries: int = 5
    base: int = 1
    max: int = 600
    jitter: bool = True
    on: ExceptionTypes = attrs.field(default=(Exception,), converter=_exception_types)

    def __attrs_post_init__(self) -> None:
        _check_count("max_retries", self.max_retries, 0)
        _check_count("base", self.base, 1)
        if not isinstance(self.jitter, bool):
            raise InvalidPolicyError(f"jitter={self.jitter!r}: give True or False")
        _check_count("max", self.max, 1)
        if self.max < self.base:
            raise InvalidPolicyError(
                f"max={self.max} is below base={self.base}: every delay would be capped to max; "
                "raise max or lower base"
            )
        _check_on(self.on)


@attrs.frozen
class FixedDelay:
    """Retry after the same `delay` seconds each time."""

    delay: int = 60
    max_retries: int = 3
    on: ExceptionTypes = attrs.field(default=(Exception,), converter=_exception_types)

    def __attrs_post_init__(self) -> None:
        _check_count("delay", self.delay, 0)
        _check_count("max_retries", self.max_retries, 0)
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


def retry_delays(config: Mapping[str, Any]) -> dict[str, Any]:
    """The longest waits a task's Celery options can give its retries, by option name."""
    delays = {"default_retry_delay": config.get("default_retry_delay", 0)}
    if config.get("retry_backoff"):
        delays["retry_backoff_max"] = config.get("retry_backoff_max", 600)
    delays["retry_kwargs['countdown']"] = (config.get("retry_kwargs") or {}).get("countdown", 0)
    return delays


def check_retry_delays(config: Mapping[str, Any], where: str, settings: Settings) -> None:
    """Refuse retries that would wait in a worker past RabbitMQ's consumer timeout.

    Only where delays are not kept on the broker (`Settings.delays_on_broker`).
    """
    if settings.delays_on_broker:
        return
    for name, value in retry_delays(config).items():
        if isinstance(value, int | float) and value > MAX_HELD_DELAY:
            raise InvalidPolicyError(held_delay_refusal(f"{where}: {name}={value}s"))


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
