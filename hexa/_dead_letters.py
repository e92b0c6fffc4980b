"""Dead letters: messages a worker could not run, kept with the reason so they can be replayed.

A dead letter is a JSON message on the durable queue `<default queue>.dead` of the same broker
(RabbitMQ, or the embedded file broker under `.hexa/`). It carries the original message
(body, content type, headers, properties) byte for byte, so `replay` re-publishes exactly
what was refused. A dead letter is always published *before* the original message is
acknowledged: a crash in between gives a duplicate, never a loss.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import attrs
from kombu import Connection, Queue
from kombu.message import Message

from hexa._exceptions import error_text
from hexa._hooks import dead_lettered
from hexa._logging import get_logger
from hexa._settings import Settings, redact
from hexa._workflows.replay import workflow_fields

log = get_logger()

DEAD_SUFFIX = ".dead"
#: Properties of the original message worth keeping for a faithful replay.
_KEPT_PROPERTIES = ("correlation_id", "reply_to", "priority", "delivery_mode")
#: Publishing a dead letter retries briefly; the original stays unacked if it cannot.
_PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def dead_queue_name(settings: Settings) -> str:
    """`<default queue>.dead`: one dead-letter queue per hexa installation."""
    return settings.default_queue + DEAD_SUFFIX


def _jsonable(value: Any) -> Any:
    """Headers may hold anything kombu could encode; keep what JSON can, repr the rest."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


@attrs.frozen
class DeadLetter:
    """A refused or finally failed message, why, when, and the message itself."""

    id: str
    task: str
    reason: str
    when: str
    queue: str
    body: str
    body_encoding: str = "utf-8"  # or "base64" when the body was not text
    content_type: str | None = None
    content_encoding: str | None = None
    headers: Mapping[str, Any] = attrs.field(factory=dict)
    properties: Mapping[str, Any] = attrs.field(factory=dict)

    def raw_body(self) -> bytes:
        if self.body_encoding == "base64":
            return base64.b64decode(self.body)
        return self.body.encode("utf-8")

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> DeadLetter:
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in attrs.fields(cls) if f.name in data})


def _text_body(raw: bytes | str) -> tuple[str, str]:
    if isinstance(raw, str):
        return raw, "utf-8"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def from_message(message: Message, reason: str, settings: Settings) -> DeadLetter:
    """A dead letter for a message exactly as the broker delivered it."""
    headers = message.headers if isinstance(message.headers, Mapping) else {}
    properties = message.properties or {}
    body, encoding = _text_body(message.body or b"")
    return DeadLetter(
        id=str(headers.get("id") or properties.get("correlation_id") or uuid.uuid4()),
        task=str(headers.get("task") or "?"),
        reason=redact(reason, settings),
        when=_now(),
        queue=str((message.delivery_info or {}).get("routing_key") or settings.default_queue),
        body=body,
        body_encoding=encoding,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        headers={k: _jsonable(v) for k, v in headers.items()},
        properties={k: properties[k] for k in _KEPT_PROPERTIES if properties.get(k) is not None},
    )


def from_task_call(
    task_id: str,
    name: str,
    message: tuple[Mapping[str, Any], Any],
    reason: str,
    queue: str,
    settings: Settings,
) -> DeadLetter:
    """A dead letter for a task that failed for good, as a fresh message (retries reset)."""
    headers, body = message
    return DeadLetter(
        id=task_id,
        task=name,
        reason=redact(reason, settings),
        when=_now(),
        queue=queue,
        body=json.dumps(body),
        content_type="application/json",
        content_encoding="utf-8",
        headers={k: _jsonable(v) for k, v in headers.items()},
    )


class DeadLetterStore:
    """The dead-letter queue of one installation: add, list, replay, purge."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue = Queue(dead_queue_name(settings), routing_key=dead_queue_name(settings))

    def _connection(self) -> Connection:
        return Connection(
            self.settings.broker_url,
            transport_options=self.settings.broker_transport_options,
        )

    def add(self, letter: DeadLetter, connection: Connection | None = None) -> None:
        """Publish `letter` (confirmed on RabbitMQ); raises when the broker will not take it."""
        with self._connection() if connection is None else _borrowed(connection) as conn:
            producer = conn.Producer()
            producer.publish(
                letter.to_json(),
                exchange="",
                routing_key=self.queue.name,
                declare=[self.queue],
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                headers={"hexa-dead-id": letter.id},
                retry=True,
                retry_policy=_PUBLISH_RETRY,
            )

    @contextmanager
    def _fetched(self) -> Iterator[list[tuple[Message, DeadLetter]]]:
        """Every dead letter, unacknowledged: whatever the caller does not ack goes back."""
        with self._connection() as conn:
            channel: Any = conn.channel()
            queue = self.queue(channel)
            queue.declare()
            fetched = []
            while (message := queue.get(no_ack=False, accept=["json"])) is not None:
                fetched.append((message, DeadLetter.from_json(message.body or b"")))
            try:
                yield fetched
            finally:
                channel.close()  # unacked messages return to the queue

    def letters(self) -> list[DeadLetter]:
        """Every dead letter, in queue order; the queue keeps them all."""
        with self._fetched() as fetched:
            return [letter for _, letter in fetched]

    def replay(
        self,
        ids: Iterable[str] | None = None,
        prepare: Callable[[DeadLetter], None] | None = None,
    ) -> list[DeadLetter]:
        """Re-publish the chosen dead letters (all when `ids` is None) to their queues.

        `prepare(letter)` runs first: it should drop the failures stored for what the replay
        runs again (`hexa._workflows.replay.prepare_replay`), so a client calling `get()`
        waits for the replayed outcome instead of the old one.
        """
        wanted = None if ids is None else set(ids)
        replayed = []
        with self._fetched() as fetched, self._connection() as conn:
            producer = conn.Producer()
            for message, letter in fetched:
                if wanted is None or letter.id in wanted:
                    if prepare is not None:
                        prepare(letter)
                    _republish(producer, letter)
                    message.ack()  # only once the broker holds the replayed message
                    replayed.append(letter)
        return replayed

    def purge(self) -> int:
        """Drop every dead letter; returns how many there were."""
        with self._fetched() as fetched:
            for message, _ in fetched:
                message.ack()
            return len(fetched)


@contextmanager
def _borrowed(connection: Connection) -> Iterator[Connection]:
    yield connection  # a caller's connection: used, never closed here


def _republish(producer: Any, letter: DeadLetter) -> None:
    producer.publish(
        letter.raw_body(),
        exchange="",
        routing_key=letter.queue,
        declare=[Queue(letter.queue, routing_key=letter.queue)],
        content_type=letter.content_type or "application/data",
        content_encoding=letter.content_encoding or "binary",
        headers=dict(letter.headers),
        retry=True,
        retry_policy=_PUBLISH_RETRY,
        **letter.properties,
    )


def record_failure(task: Any, task_id: str, args: Any, kwargs: Any, exc: BaseException) -> None:
    """Dead-letter a task that failed for good (retries exhausted, or none to make).

    The dead letter keeps the task's place in a workflow (the rest of its chain, its chord),
    so its replay resumes the workflow. Only for messages that came from a broker: an eager
    or in-process call has nothing to replay. Runs before the worker acknowledges the
    message, so a crash here redelivers it; a broker that refuses the dead letter is logged
    (`dead_letter.failed`), and the failure stays readable in the result backend.
    """
    request = task.request
    if request.is_eager or not request.delivery_info:
        return
    settings: Settings = task.app.hexa_settings
    message = task.app.amqp.as_task_v2(
        task_id, task.name, args=list(args or ()), kwargs=kwargs, **workflow_fields(request)
    )
    attempts = (request.retries or 0) + 1
    letter = from_task_call(
        task_id,
        task.name,
        (message.headers, message.body),
        f"failed after {attempts} attempt(s): {error_text(exc)}",
        str(request.delivery_info.get("routing_key") or settings.default_queue),
        settings,
    )
    try:
        with task.app.connection_for_write() as conn:
            DeadLetterStore(settings).add(letter, connection=conn)
    except Exception as error:  # the failure itself is still stored as the task's result
        log.error("dead_letter.failed", id=task_id, error=redact(f"{error!r}", settings))
    else:
        dead_lettered(task.app, task.name)
