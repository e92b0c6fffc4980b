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

from amqp.exceptions import PreconditionFailed
from celery import bootsteps, signals
from celery.utils.log import get_logger as celery_logger
from celery.worker.consumer import Consumer
from kombu.message import Message
from vine import promise

from hexa._dead_letters import DeadLetter, DeadLetterStore, dead_queue_name, from_message
from hexa._definitions import unknown_task_reason
from hexa._delivery_limit import (
    failed_deliveries,
    limit_reason,
    needs_counting,
    requeue_counted,
)
from hexa._exceptions import DeliveryLimitError, UnknownTaskError, error_text
from hexa._hooks import dead_lettered
from hexa._inflate import bound_decompression
from hexa._locator import service_locator
from hexa._logging import get_logger
from hexa._message_check import MalformedMessage, check_message, identity
from hexa._queues import plain_queue, queue_mismatch
from hexa._settings import Settings, redact

log = get_logger()
_celery_log = celery_logger(__name__)


_CELERY_DELAYS = "celery.worker.consumer.delayed_delivery:DelayedDelivery"
_Blueprint: Any = Consumer.Blueprint


class DeadQueue(bootsteps.StartStopStep):
    """Worker start: `<default queue>.dead` declared, so a queue of another type fails now,
    with the fix, not at the first dead letter."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c: Any) -> None:
        settings: Settings = c.app.hexa_settings
        channel = c.connection.channel()
        try:
            plain_queue(dead_queue_name(settings), settings).bind(channel).declare()
        finally:
            channel.close()


class DeadLetterConsumer(Consumer):
    """Routes every message the worker cannot run to `<default queue>.dead`."""

    class Blueprint(_Blueprint):  # type: ignore[misc]  # Celery's class is untyped
        # Celery's own delayed delivery wants topic exchanges; hexa's works on any queue.
        default_steps = [
            *(step for step in _Blueprint.default_steps if step != _CELERY_DELAYS),
            "hexa._delays:DelayTopology",
            "hexa._dead_consumer:DeadQueue",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bound_decompression(self.hexa_settings.max_message_size)  # before any message arrives

    def start(self) -> None:
        """Celery's, with a queue declared with another type reported with the fix."""
        try:
            super().start()
        except PreconditionFailed as error:
            raise queue_mismatch(error) or error from None

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
            self._publish(letter)
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

    def _publish(self, letter: DeadLetter) -> None:
        """On the pooled connection; a broker whose own size limit is lower gets the reason."""
        store = DeadLetterStore(self.hexa_settings)
        try:
            with self.app.producer_or_acquire() as producer:  # one connection, reused
                store.add(letter, producer)
        except PreconditionFailed:  # 406: RabbitMQ's max_message_size is below hexa's limit
            store.add(letter.cut(0))  # reason only, on a channel of its own

    def refuse(self, message: Message, exc: MalformedMessage) -> None:
        """A message Celery must not read: dead-lettered, its failure stored for a caller."""
        self.dead_letter(message, f"malformed task message: {exc}")
        self._mark_failed(identity(message)[1], exc)

    def on_unknown_message(self, body: Any, message: Message) -> None:
        self.dead_letter(message, "not a task message: no 'task' header and no task body")
        signals.task_rejected.send(sender=self, message=message, exc=None)

    def on_unknown_task(self, body: Any, message: Message, exc: BaseException) -> None:
        name, task_id = identity(message)  # protocol 1 names them in the body
        reason = unknown_task_reason(name, service_locator.services())  # names a near miss
        self.dead_letter(message, reason)
        self._mark_failed(task_id, UnknownTaskError(reason))
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

    def _over_limit(self, message: Message) -> bool:
        """Whether the delivery limit took the message: dead-lettered, or counted and requeued."""
        settings = self.hexa_settings
        failed = failed_deliveries(message)
        if failed >= settings.delivery_limit:
            reason = limit_reason(failed, settings)
            self.dead_letter(message, reason)
            self._mark_failed(identity(message)[1], DeliveryLimitError(reason))
            return True
        if not needs_counting(message, settings):
            return False
        try:
            with self.app.producer_or_acquire() as producer:
                requeue_counted(message, failed, producer, settings)
        except Exception as exc:  # not counted this time; run it rather than loop
            log.error("delivery.not_counted", error=redact(error_text(exc), settings))
            return False
        message.ack_log_error(_celery_log, self._errors)
        log.warning("message.redelivered", id=identity(message)[1], failed_deliveries=failed)
        return True

    def create_task_handler(self, promise: Any = promise) -> Callable[[Message], Any]:
        """Celery's handler, with any exception it raises turned into a dead letter."""
        handle = super().create_task_handler(promise)

        def on_task_received(message: Message) -> Any:
            try:
                if self._over_limit(message):
                    return None
                check_message(message)
                return handle(message)
            except MalformedMessage as exc:
                return self.refuse(message, exc)
            except Exception as exc:
                return self.dead_letter(message, f"malformed task message: {error_text(exc)}")

        return on_task_received
