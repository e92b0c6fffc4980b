"""Tasks whose signatures use every kind of parameter `hexa stubs` must write out."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import anyio
import attrs

from hexa import module_task

if TYPE_CHECKING:
    from uuid import UUID  # not resolvable at run time: the stubs write Any


@attrs.frozen
class Money:
    """A type of the application itself: clients cannot import it, the stubs write Any."""

    cents: int


@module_task
def schedule_payment(
    amount: Decimal,
    due: datetime.date,
    *,
    currency: Literal["ARS", "USD"] = "ARS",
    tags: Sequence[str] = (),
) -> str:
    """Schedule a payment (arguments arrive as JSON: strings for the Decimal and the date)."""
    return f"{amount} {currency} due {due} tags={list(tags)}"


@module_task(bind=True)
def whoami(self: Any, label: str) -> str:
    """A bound task: callers never pass the task instance."""
    return f"{label}:{self.request.id}"


@module_task
async def total(
    amounts: list[int], money: Money | None = None, ref: UUID | None = None, cap: float = 1e9
) -> int:
    """Add the amounts up (async: callers get the int, never a coroutine)."""
    await anyio.sleep(0)
    return min(sum(amounts), int(cap))


@module_task(queue="typed-calls-elsewhere")
def positional(n: int, /, scale: int = 2, *rest: int, flag: bool = False, **extra: str) -> int:
    """Every parameter kind, routed to its own queue by default."""
    return n * scale + sum(rest)


def legacy(text: str = "x") -> str:
    return text


def _clock() -> datetime.date:
    return datetime.date(2026, 1, 1)


@module_task
def stamped(when: datetime.date = _clock()) -> str:  # noqa: B008  (a non-literal default)
    """A default that is not a literal: the stubs write `_DEFAULT`."""
    return str(when)
