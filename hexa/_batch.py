"""`with hexa.batch(): ...`: many `.send()` calls, confirmed together when the block ends.

Inside the block each `.send()` is checked against the task's signature as always, publishes
at once and returns its `TaskResult`, but does not wait for the broker's confirm. At the end
of the block hexa waits for every confirm (RabbitMQ confirms many messages per frame), sends
again any message the broker refused or lost with its connection, and returns only once the
broker holds every message, or raises `PublishError` naming the tasks it could not confirm
by `HEXA_PUBLISH_TIMEOUT`. Delivery stays at least once: a message sent twice keeps its id.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import attrs


class Confirms(Protocol):
    """What publishes inside a batch: it confirms the messages it sent, all together."""

    def confirm_batch(self, sent: list[Any]) -> None: ...


@attrs.define
class Batch:
    """The messages published inside one `batch()` block, confirmed at its end."""

    pending: list[tuple[Confirms, Any]] = attrs.field(factory=list)
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def add(self, publisher: Confirms, sent: Any) -> None:
        with self.lock:
            self.pending.append((publisher, sent))

    def confirm(self) -> None:
        """Wait for every message (each publisher confirms its own); raise what could not."""
        with self.lock:
            pending, self.pending = self.pending, []
        by_publisher: dict[int, tuple[Confirms, list[Any]]] = {}
        for publisher, sent in pending:
            by_publisher.setdefault(id(publisher), (publisher, []))[1].append(sent)
        for publisher, sent_by_it in by_publisher.values():
            publisher.confirm_batch(sent_by_it)


_current: contextvars.ContextVar[Batch | None] = contextvars.ContextVar("hexa_batch", default=None)


def current_batch() -> Batch | None:
    """The batch the calling code is inside, if any."""
    return _current.get()


@contextmanager
def batch() -> Iterator[None]:
    """Send many tasks and have them all confirmed at once when the block ends.

    ```python
    with hexa.batch():
        for invoice_id in ids:
            invoicing.emit_invoice.send(invoice_id)  # typed, checked, published now
    # here the broker holds every message (or PublishError said which it does not)
    ```

    Nested blocks join the outer one. If the block raises, what it already sent is still
    confirmed before the exception goes on.
    """
    if _current.get() is not None:
        yield
        return
    active = Batch()
    token = _current.set(active)
    try:
        yield
    except BaseException:
        _current.reset(token)
        active.confirm()
        raise
    _current.reset(token)
    active.confirm()
