"""The table `hexa_outbox`: one row per message sent inside an `outbox(...)` block.

`message` holds the Celery protocol-2 message exactly as the publisher builds it (headers,
properties, body); `queue` and `priority` are its routing. The relay sets `sent_at` once the
broker confirmed the message, and deletes sent rows after `SENT_ROWS_KEPT`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    text,
)

TABLE_NAME = "hexa_outbox"
#: The PostgreSQL channel a write notifies (at commit) and the relay listens on.
CHANNEL = "hexa_outbox"
#: How long sent rows stay, for `hexa outbox status` and for looking back at what was sent.
SENT_ROWS_KEPT = timedelta(hours=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


metadata = MetaData()

outbox_table = Table(
    TABLE_NAME,
    metadata,
    # BIGINT on PostgreSQL; SQLite autoincrements only an INTEGER PRIMARY KEY.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("task_id", String(64), nullable=False),
    Column("task_name", String(255), nullable=False),
    Column("queue", String(255), nullable=False),
    Column("priority", SmallInteger(), nullable=True),
    Column("message", JSON(), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    # What the relay scans: the unsent rows, oldest first.
    Index(
        "hexa_outbox_unsent",
        "id",
        postgresql_where=text("sent_at IS NULL"),
        sqlite_where=text("sent_at IS NULL"),
    ),
    Index("hexa_outbox_sent_at", "sent_at"),
)
