"""The invoicing module's database: SQLite under .hexa/ unless DATABASE_URL names another.

`make worker` relays the outbox of this same database (it sets HEXA_OUTBOX_URL to it), so the
tasks this module sends from its transactions are published once they commit.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool

import hexa.sqlalchemy

DEFAULT_URL = "sqlite+aiosqlite:///.hexa/app.db"


class Base(DeclarativeBase):
    pass


class PurchaseInvoice(Base):
    __tablename__ = "purchase_invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    total: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))


_engine: AsyncEngine | None = None


async def _engine_with_tables() -> AsyncEngine:
    """The engine, made once per process, with this module's tables and `hexa_outbox`."""
    global _engine
    if _engine is None:
        Path(".hexa").mkdir(exist_ok=True)
        # NullPool: a connection per session, so callers on different event loops never
        # share one (a script's anyio.run, the worker's persistent loop, tests).
        url = os.environ.get("DATABASE_URL") or DEFAULT_URL
        made = create_async_engine(url, poolclass=NullPool)
        async with made.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            await conn.run_sync(hexa.sqlalchemy.metadata.create_all)
        _engine = made
    return _engine


async def new_session() -> AsyncSession:
    return AsyncSession(await _engine_with_tables(), expire_on_commit=False)
