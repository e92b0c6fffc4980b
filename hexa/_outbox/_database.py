"""The relay's own engine on `HEXA_OUTBOX_URL`, and the table's presence in that database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, inspect, make_url

from hexa._exceptions import ConfigurationError
from hexa._outbox._table import TABLE_NAME, metadata

#: The relay is synchronous: an application's async driver becomes its sync counterpart, and a
#: bare `postgresql://` means psycopg 3 (the extra's driver), not SQLAlchemy's psycopg2 default.
_SYNC_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgresql+asyncpg": "postgresql+psycopg",
    "postgresql+psycopg_async": "postgresql+psycopg",
    "sqlite+aiosqlite": "sqlite",
}


def sync_url(url: str | URL) -> URL:
    parsed = make_url(url)
    return parsed.set(drivername=_SYNC_DRIVERS.get(parsed.drivername, parsed.drivername))


def shown(url: str | URL) -> str:
    """The URL with its password masked, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def relay_engine(url: str | URL) -> Engine:
    """An engine for the relay; on SQLite each transaction takes the write lock first."""
    engine = create_engine(sync_url(url), pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        _immediate_transactions(engine)
    return engine


def _immediate_transactions(engine: Engine) -> None:
    """`BEGIN IMMEDIATE`: two relays on one SQLite file never read the same unsent rows.

    (SQLAlchemy's recipe: pysqlite's own implicit BEGIN comes too late, at the first write.)
    """

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_table(engine: Engine) -> bool:
    """Create `hexa_outbox` (and its indexes) unless it exists; True when it was created."""
    if inspect(engine).has_table(TABLE_NAME):
        return False
    metadata.create_all(engine)
    return True


def ensure_table(engine: Engine) -> None:
    """SQLite (the embedded default) gets the table; elsewhere a missing table names the fix."""
    if engine.dialect.name == "sqlite":
        create_table(engine)
    elif not inspect(engine).has_table(TABLE_NAME):
        raise ConfigurationError(
            f"the table {TABLE_NAME} does not exist in {shown(engine.url)}: run "
            "`hexa outbox init`, or add hexa.sqlalchemy.metadata to your Alembic migrations "
            "(docs/outbox.md)"
        )
