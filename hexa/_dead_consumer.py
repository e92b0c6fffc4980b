"""The worker's message consumer: Celery's, except that nothing it cannot run is dropped.

Celery logs and discards a message for an unknown task, a message it cannot decode, one in a
refused content type (pickle) and one that is not a task message at all. This consumer puts
each of them in the dead-letter queue with the reason, then acknowledges it; a message that
makes Celery's own handler raise (missing headers, say) is dead-lettered instead of crashing
the consumer and being redelivered forever. Installed by `celery_config` (`worker_consumer`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from celery import signals
from celery.exceptions import NotRegistered
from celery.utils.log import get_logger as celery_logger
from celery.worker.consumer import Consumer
from kombu.message import Message
from vine import promise

from hexa._dead_letters import DeadLetterStore, dead_queue_name, from_message
from hexa._exceptions import error_text
from hexa._hooks import dead_lettered
from hexa._logging import get_logger
from hexa._settings import Settings, redact

log = get_logger()
_celery_log = celery_logger(__name__)


class DeadLetterConsumer(Consumer):
    """Routes every message the worker cannot run to `<default queue>.dead`."""

    @property
    def hexa_settings(self) -> Settings:
        settings: Settings = cast(Any, self.app).hexa_settings
        return settings

    @property
    def _errors(self) -> tuple[type[BaseException], ...]:
        errors: tuple[type[BaseException], ...] = cast(Any, self).connection_errors
        return errors

    def dead_letter(self, message: Message, reason: str) -> None:
        """Publish the dead letter, then ack the original (a crash in between duplicates)."""
        settings = self.hexa_settings
        letter = from_message(message, reason, settings)
        try:
            with self.app.connection_for_write() as conn:
                DeadLetterStore(settings).add(letter, connection=conn)
        except Exception as exc:
            log.error("dead_letter.failed", id=letter.id, error=redact(error_text(exc), settings))
            message.reject_log_error(_celery_log, self._errors, requeue=True)
            return
        log.warning(
            "message.dead_lettered",
            id=letter.id,
            task=letter.task,
            reason=letter.reason,
            dead_queue=dead_queue_name(settings),
        )
        message.ack_log_error(_celery_log, self._errors)
        dead_lettered(self.app, letter.task)

    def on_unknown_message(self, body: Any, message: Message) -> None:
        self.dead_letter(message, "not a task message: no 'task' header and no task body")
        signals.task_rejected.send(sender=self, message=message, exc=None)

    def on_unknown_task(self, body: Any, message: Message, exc: BaseException) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        name, task_id = headers.get("task"), headers.get("id")
        self.dead_letter(message, f"unknown task {name!r}: no module of this worker declares it")
        self._mark_failed(task_id, NotRegistered(name))
        signals.task_unknown.send(sender=self, message=message, exc=exc, name=name, id=task_id)

    def on_invalid_task(self, body: Any, message: Message, exc: BaseException) -> None:
        self.dead_letter(message, f"invalid task message: {error_text(exc)}")
        signals.task_rejected.send(sender=self, message=message, exc=exc)

    def on_decode_error(self, message: Message, exc: BaseException) -> None:
        self.dead_letter(message, f"undecodable message: {error_text(exc)}")

    def _mark_failed(self, task_id: str | None, exc: Exception) -> None:
        """Let a client waiting on the result see the failure, as Celery does."""
        if not task_id:
            return
        try:
            self.app.backend.mark_as_failure(task_id, exc)
        except Exception as error:
            log.warning("result.not_stored", id=task_id, error=error_text(error))

    def create_task_handler(self, promise: Any = promise) -> Callable[[Message], Any]:
        """Celery's handler, with any exception it raises turned into a dead letter."""
        handle = super().create_task_handler(promise)

        def on_task_received(message: Message) -> Any:
            try:
                return handle(message)
            except Exception as exc:
                return self.dead_letter(message, f"malformed task message: {error_text(exc)}")

        return on_task_received
