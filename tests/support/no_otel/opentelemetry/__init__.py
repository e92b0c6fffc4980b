"""OpenTelemetry "not installed": first on PYTHONPATH, this package shadows the real one.

Every import attempt is written down, the importing module's name one a line, in the file
that `HEXA_TEST_OTEL_ATTEMPTS` names, so a test can tell who tried (other libraries may try,
as redis-py does; hexa must not), and then fails as a missing package does.
"""

import os
import sys


def _importer() -> str:
    frame = sys._getframe(0)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name != __name__ and not name.startswith(("importlib", "_frozen_importlib")):
            return name
        frame = frame.f_back
    return "?"


_record = os.environ.get("HEXA_TEST_OTEL_ATTEMPTS")
if _record:
    with open(_record, "a", encoding="utf-8") as attempts:
        attempts.write(_importer() + "\n")
raise ImportError("No module named 'opentelemetry' (tests/support/no_otel)")
