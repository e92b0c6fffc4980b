"""Raw writes to stderr kept inside the JSON log stream.

With `HEXA_LOG_FORMAT=json` every line on stderr must parse: log shippers split the stream
into events by line. hexa's and Celery's loggers write JSON, but code that writes to stderr
itself does not: billiard prints a pool callback's traceback, Python prints warnings,
"Exception ignored in ..." and a crashing thread's traceback there. `json_safe_stderr()`
puts a writer in `sys.stderr` that turns each such line into a JSON event
(`{"event": "stderr", "line": ...}`, passwords redacted) and returns the real stream, for
the loggers that already write JSON.
"""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from hexa._settings import redact_known


class JsonLines(io.TextIOBase):
    """A text stream whose every line reaches `stream` as one JSON event."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        event = {
            "event": "stderr",
            "line": redact_known(line.rstrip("\r")),
            "level": "warning",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        self.stream.write(json.dumps(event) + "\n")  # one write: one line
        self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self._emit(self._pending)
        self._pending = ""

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> Any:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


def json_safe_stderr() -> TextIO:
    """Make `sys.stderr` a `JsonLines` (once); returns the real stream beneath it."""
    current: Any = sys.stderr
    if isinstance(current, JsonLines):
        return current.stream
    sys.stderr = JsonLines(current)
    real: TextIO = current
    return real
