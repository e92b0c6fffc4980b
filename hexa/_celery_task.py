"""The Celery task base class of every hexa task: one structured event per outcome."""

from __future__ import annotations

import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import structlog
from celery import Task as CeleryTask
from celery.exceptions import Retry

from hexa._dead_letters import record_failure
from hexa._exceptions import error_text
from hexa._logging import get_logger

log = get_logger()
# A task's start time, in its own context: a thread's, or a greenlet's on the asyncio pool
# (where many tasks share a thread).
_started: ContextVar[float] = ContextVar("hexa_task_started")
_request: ContextVar[Any] = ContextVar("hexa_task_request")


def _delay(einfo: Any) -> float | None:
    """Seconds until the retry runs, read from the `Retry` that Celery's einfo carries."""
    retry = getattr(einfo, "exception", None)
    if not isinstance(retry, Retry):  # billiard wraps it in an ExceptionWithTraceback
        retry = getattr(retry, "exc", None)
    when = retry.when if isinstance(retry, Retry) else None
    if isinstance(when, datetime):  # retry(eta=...); Celery reads a naive eta as UTC
        aware = when if when.tzinfo else when.replace(tzinfo=UTC)
        return round((aware - datetime.now(UTC)).total_seconds(), 3)
    return when if isinstance(when, int | float) else None


class HexaTask(CeleryTask[Any, Any]):
    """Binds the task id into the log context and logs `task.succeeded|retry|failed`."""

    #: The task's declared `timeout=`, set by discovery, for the `task.failed` event.
    hexa_timeout: float | None = None
    #: `task.failed` reports every failure, with its traceback; for Celery they are then
    #: "expected", which it logs at INFO without one (hexa's logging leaves that line out).
    throws = (Exception,)

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        structlog.contextvars.bind_contextvars(task_id=task_id, task=self.name)
        _started.set(time.monotonic())
        _request.set(self.request)  # still known when a failure outside the body pops it

    def _elapsed(self) -> float:
        now = time.monotonic()
        return round(now - _started.get(now), 4)

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        log.info("task.succeeded", duration=self._elapsed())

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        log.warning(
            "task.retry",
            attempt=self.request.retries + 1,
            delay=_delay(einfo),
            error=error_text(exc),
        )

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        request = self._request_of(task_id)
        log.error(
            "task.failed",
            task_id=task_id,  # also when the worker's main process reports a hard time limit
            task=self.name,
            attempts=(request.retries or 0) + 1,
            duration=self._elapsed(),
            error=error_text(exc),
            timeout=self.hexa_timeout,
            exc_info=exc,
        )
        record_failure(self, task_id, args, kwargs, exc, request)

    def _request_of(self, task_id: str) -> Any:
        """The failed call's request: Celery pops it before reporting a failure outside the
        body (a callback it could not send); the main process never had it (hard limit)."""
        started = _request.get(None)
        if self.request.id != task_id and getattr(started, "id", None) == task_id:
            return started
        return self.request

    def after_return(self, *args: Any, **kwargs: Any) -> None:
        structlog.contextvars.unbind_contextvars("task_id", "task")
