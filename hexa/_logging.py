"""structlog set-up: console in a terminal, JSON otherwise; Celery's own logs go the same way."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from hexa._exceptions import ConfigurationError

FORMAT_ENV = "HEXA_LOG_FORMAT"
FORMATS = ("console", "json")

#: Loggers whose per-task INFO lines hexa's `task.*` events replace (one line per outcome).
_REPLACED = ("celery.app.trace", "celery.worker.strategy")


def log_format(environ: dict[str, str] | None = None) -> str:
    """`HEXA_LOG_FORMAT`, else console when stderr is a terminal, else JSON."""
    value = (environ if environ is not None else os.environ).get(FORMAT_ENV, "").strip().lower()
    if value and value not in FORMATS:
        raise ConfigurationError(f"{FORMAT_ENV}={value!r}: use one of {', '.join(FORMATS)}")
    return value or ("console" if sys.stderr.isatty() else "json")


def add_trace_ids(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """`trace_id` and `span_id` of the current OpenTelemetry span, when there is one.

    Looks OpenTelemetry up without importing it: a process that never imported it pays one
    dictionary lookup per line.
    """
    otel = sys.modules.get("opentelemetry.trace")
    if otel is not None:
        context = otel.get_current_span().get_span_context()
        if context.is_valid:
            event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
            event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


def configure_logging(fmt: str | None = None, level: str | int = "INFO") -> None:
    """Route structlog events and stdlib logging (Celery, kombu) to stderr in one format."""
    fmt = fmt or log_format()
    level_no = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        # One write per line: print() writes the newline separately, and JSON lines from
        # prefork children sharing stderr would interleave into unparseable lines.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_no)
    for name in _REPLACED:
        logging.getLogger(name).setLevel(max(level_no, logging.WARNING))


def get_logger(**initial: Any) -> Any:
    """hexa's structlog logger."""
    return structlog.get_logger("hexa", **initial)
