"""Raw writes to stderr become JSON lines in JSON mode."""

from __future__ import annotations

import io
import json

from hexa._stderr import JsonLines


class TestJsonLines:
    def test_each_line_of_a_raw_traceback_is_one_json_event(self) -> None:
        real = io.StringIO()
        stream = JsonLines(real)
        stream.write("Traceback (most recent call last):\n  File")
        stream.write(' "x.py", line 1\nValueError: boom\n\n')
        events = [json.loads(line) for line in real.getvalue().splitlines()]
        assert [e["line"] for e in events] == [
            "Traceback (most recent call last):",
            '  File "x.py", line 1',
            "ValueError: boom",
        ]
        assert {e["event"] for e in events} == {"stderr"}

    def test_a_partial_line_waits_for_its_end_or_the_close(self) -> None:
        real = io.StringIO()
        stream = JsonLines(real)
        stream.write("no newline yet")
        assert real.getvalue() == ""
        stream.close()
        assert json.loads(real.getvalue())["line"] == "no newline yet"
