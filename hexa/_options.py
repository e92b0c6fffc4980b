"""Delivery options: when and where a message goes, never what the task does on failure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from hexa._exceptions import DispatchError, UnknownOptionError

#: The seed's list of valid `send_task` options.
SEND_TASK_OPTIONS = ("args", "kwargs", "countdown", "eta", "expires", "priority", "queue")
#: What `.with_options()` takes: the same, minus the call's own arguments.
WITH_OPTIONS = SEND_TASK_OPTIONS[2:]
_RETRY_WORDS = {"retries", "retry_policy", "max_retries", "retry", "autoretry_for", "retry_backoff"}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not _is_number(value):
        raise DispatchError(f"{attribute.name}={value!r}: give seconds as a number, e.g. 30")
    if value is not None and value < 0:
        raise DispatchError(f"{attribute.name}={value!r}: must be >= 0 seconds")


def _eta(_: object, __: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is not None and not isinstance(value, datetime):
        raise DispatchError(f"eta={value!r}: give a datetime, or countdown= in seconds")


def _expires(_: object, attribute: attrs.Attribute[Any], value: float | datetime | None) -> None:
    if not isinstance(value, datetime):
        _non_negative(_, attribute, value)


def _priority(_: object, __: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or value not in range(10)):
        raise DispatchError(f"priority={value!r}: must be a whole number from 0 to 9")


def _queue(_: object, __: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise DispatchError(f"queue={value!r}: name a queue, e.g. queue='invoicing'")


@attrs.frozen
class SendOptions:
    """`countdown`, `eta`, `expires`, `priority` and `queue` of one message."""

    countdown: float | None = attrs.field(default=None, validator=_non_negative)
    eta: datetime | None = attrs.field(default=None, validator=_eta)
    expires: float | datetime | None = attrs.field(default=None, validator=_expires)
    priority: int | None = attrs.field(default=None, validator=_priority)
    queue: str | None = attrs.field(default=None, validator=_queue)

    def __attrs_post_init__(self) -> None:
        if self.countdown is not None and self.eta is not None:
            raise DispatchError("countdown= and eta= both set: give one of them")

    def for_celery(self) -> dict[str, Any]:
        """Only the options that are set, as `send_task` keywords."""
        return {k: v for k, v in attrs.asdict(self, recurse=False).items() if v is not None}


def refuse_unknown_options(
    task_name: str, options: Mapping[str, Any], method: str = "send_task"
) -> None:
    """Raise `UnknownOptionError` (a `TypeError`) for options the method does not take."""
    if not options:
        return
    given = ", ".join(f"{key}=" for key in sorted(options))
    why = ""
    if _RETRY_WORDS & options.keys():
        why = (
            " retry policy is declared on the task (@module_task(retry=Backoff(...)) or the"
            " 'config' of its *_tasks entry), not per call;"
        )
    valid = SEND_TASK_OPTIONS if method == "send_task" else WITH_OPTIONS
    raise UnknownOptionError(
        f"{method}({task_name!r}) got {given};{why} valid options: " + ", ".join(valid)
    )
