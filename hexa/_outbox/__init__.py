"""The transactional outbox: `with outbox(session): task.send(...)` (docs/outbox.md).

Inside the block, a send checks its arguments as always, then writes the message to the table
`hexa_outbox` through the caller's session instead of publishing it; the relay
(`hexa outbox relay`, or `hexa worker` with `HEXA_OUTBOX_URL`) publishes it after the commit.

This module is all that `import hexa` loads of the outbox: the context variable the publish
path reads and `outbox()` itself. SQLAlchemy is imported only when a block is entered.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

from hexa._exceptions import ConfigurationError

if TYPE_CHECKING:
    from hexa._outbox._writer import Writer

_active: ContextVar[Writer | None] = ContextVar("hexa_outbox", default=None)


def active_outbox() -> Writer | None:
    """The writer of the `outbox(...)` block this code runs in, if any (the publish hook)."""
    return _active.get()


class Outbox:
    """`outbox(session)`: `with` it for a `Session`, `async with` it for an `AsyncSession`."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._writer: Writer | None = None
        self._token: Token[Writer | None] | None = None

    def _enter(self, is_async: bool) -> None:
        try:
            from hexa._outbox._writer import writer_for
        except ModuleNotFoundError as error:
            raise ConfigurationError(
                f"the outbox needs SQLAlchemy ({error.name} is not installed): "
                "pip install 'hexa[sqlalchemy]'"
            ) from None
        self._writer = writer_for(self.session, is_async)
        self._token = _active.set(self._writer)

    def _leave(self) -> Writer:
        writer, token = self._writer, self._token
        if writer is None or token is None:
            raise RuntimeError("this outbox block was never entered")
        _active.reset(token)
        return writer

    def __enter__(self) -> Outbox:
        self._enter(is_async=False)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave().close(failed=kind is not None)

    async def __aenter__(self) -> Outbox:
        self._enter(is_async=True)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._leave().aclose(failed=kind is not None)

    def __repr__(self) -> str:
        return f"<hexa outbox of {type(self.session).__name__}>"


def outbox(session: Any) -> Outbox:
    """Send tasks in `session`'s transaction: published after it commits, never after a rollback.

    ```python
    with Session(engine) as session, session.begin():
        session.add(invoice)
        session.flush()
        with outbox(session):
            create_invoice_from_purchase_invoice.send(invoice.id)
    ```

    `async with outbox(async_session): await task.send_async(...)` for an `AsyncSession`.
    Needs the `hexa[sqlalchemy]` extra; `.send()` returns the `TaskResult` the task will run
    with. The relay publishes the committed messages (docs/outbox.md).
    """
    return Outbox(session)
