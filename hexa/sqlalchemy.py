"""The outbox table for SQLAlchemy and Alembic users (extra `hexa[sqlalchemy]`).

```python
# alembic/env.py
import hexa.sqlalchemy
target_metadata = [Base.metadata, hexa.sqlalchemy.metadata]   # autogenerate sees hexa_outbox
```

`hexa outbox init` creates the same table without Alembic. Sending through it:
`from hexa import outbox` (docs/outbox.md).
"""

from __future__ import annotations

from hexa._outbox._table import TABLE_NAME, metadata, outbox_table

__all__ = ["TABLE_NAME", "metadata", "outbox_table"]
