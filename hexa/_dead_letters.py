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
from amqp.exceptions import PreconditionFailed
from kombu import Connection
from kombu.message import Message

from hexa._delays import queue_of
from hexa._delivery_limit import DELIVERY_COUNT_HEADERS
from hexa._exceptions import error_text
from hexa._hooks import dead_lettered
from hexa._inflate import bound_decompression
from hexa._logging import get_logger
from hexa._message_check import MAX_NAME, identity
from hexa._queues import plain_queue, queue_mismatch
from hexa._settings import Settings, redact
from hexa._workflows.replay import workflow_fields

log = get_logger()

DEAD_SUFFIX = ".dead"
#: Properties of the original message worth keeping for a faithful replay.
_KEPT_PROPERTIES = ("correlation_id", "reply_to", "priority", "delivery_mode")
#: Publishing a dead letter retries briefly; the original stays unacked if it cannot.
_PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


#: Fields every dead letter has; a message in the dead queue without them is foreign.
_REQUIRED = ("id", "task", "reason", "when", "queue", "body")
#: Of a letter too big to publish whole, the first bytes of its body are kept.
KEPT_WHEN_CUT = 64 * 1024
#: A reason is cut at this length (a hostile message's fields can be long).
MAX_REASON = 1000


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
    #: The original body's size in bytes when `body` keeps only its beginning (see `fitted`).
    body_size: int | None = None

    @property
    def truncated(self) -> bool:
        """True when the body was cut to fit the size limit: such a letter cannot be replayed."""
        return self.body_size is not None

    def raw_body(self) -> bytes:
        if self.body_encoding == "base64":
            return base64.b64decode(self.body)
        return self.body.encode("utf-8")

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> DeadLetter:
        """The letter in `text`; `ValueError` when `text` is not a hexa dead letter."""
        data = json.loads(text)
        if not isinstance(data, dict) or not all(
            isinstance(data.get(name), str) for name in _REQUIRED
        ):
            raise ValueError(f"not a hexa dead letter (needs {', '.join(_REQUIRED)} as text)")
        return cls(**{f.name: data[f.name] for f in attrs.fields(cls) if f.name in data})

    def fitted(self, limit: int) -> tuple[DeadLetter, str]:
        """(letter, JSON) within `limit` bytes: whole, else base64, else cut, else reason only.

        A letter bigger than the broker takes would be refused and requeued forever.
        """
        text = self.to_json()
        if len(text) <= limit:
            return self, text
        for keep in (None, KEPT_WHEN_CUT, 0):
            smaller = self.cut(keep)
            text = smaller.to_json()
            if len(text) <= limit:
                break
        return smaller, text

    def cut(self, keep: int | None) -> DeadLetter:
        """This letter with its body in base64, only its first `keep` bytes (None: all)."""
        raw = self.raw_body()
        keep = len(raw) if keep is None else keep
        body = base64.b64encode(raw[:keep]).decode("ascii")
        if keep >= len(raw):
            return attrs.evolve(self, body=body, body_encoding="base64")
        note = f" [body cut to fit the size limit: {keep:,} of {len(raw):,} bytes kept]"
        headers = self.headers if keep else {}
        return attrs.evolve(
            self,
            body=body,
            body_encoding="base64",
            body_size=len(raw),
            reason=self.reason + note,
            headers=headers,
        )


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
    name, task_id = identity(message)
    return DeadLetter(
        id=str(task_id or properties.get("correlation_id") or uuid.uuid4())[:MAX_NAME],
        task=name or "?",
        reason=redact(reason[:MAX_REASON], settings),
        when=_now(),
        queue=queue_of(str((message.delivery_info or {}).get("routing_key") or ""))
        or settings.default_queue,
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
    correlation_id: str | None = None,
) -> DeadLetter:
    """A dead letter for a task that failed for good, as a fresh message (retries reset).

    It keeps the original message's `correlation_id`, by which a publisher may know it.
    """
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
        properties={"correlation_id": correlation_id} if correlation_id else {},
    )


@attrs.frozen
class Skipped:
    """An entry of the dead queue left in place: foreign, or a letter that cannot be replayed."""

    what: str  # a printable description: the letter's id, or the start of a foreign body
    why: str
    id: str | None = None  # the letter's id, when it is a letter


def _parse(message: Message) -> DeadLetter | Skipped:
    """The dead letter in `message`, or why it is not one (a foreign message, say)."""
    try:
        return DeadLetter.from_json(message.body or b"")
    except (ValueError, TypeError) as error:
        preview = printable(repr((message.body or b"")[:60]))
        return Skipped(f"foreign entry {preview}", printable(str(error)))


class DeadLetterStore:
    """The dead-letter queue of one installation: add, list, replay, purge.

    Entries that are not hexa dead letters (anything else published to the queue) are left
    where they are and reported in `skipped` by the call that met them, never a failure.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue = plain_queue(dead_queue_name(settings), settings)
        #: What the last `letters`, `replay` or `purge` left in the queue, and why.
        self.skipped: list[Skipped] = []

    def _connection(self) -> Connection:
        return Connection(
            self.settings.broker_url,
            transport=self.settings.broker_transport,
            transport_options=self.settings.broker_transport_options,
        )

    def add(self, letter: DeadLetter, producer: Any = None) -> None:
        """Publish `letter` (confirmed on RabbitMQ); raises when the broker will not take it.

        The letter is fitted to `Settings.max_message_size` first (see `DeadLetter.fitted`).
        With a `producer` (a worker's pooled one) its connection is reused: no new
        connection per dead letter.
        """
        if producer is None:
            with self._connection() as conn:
                return self.add(letter, conn.Producer())
        letter, text = letter.fitted(self.settings.max_message_size)
        producer.publish(
            text,
            exchange="",
            routing_key=self.queue.name,
            declare=[self.queue],  # declared once per connection: kombu remembers
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
            headers={"hexa-dead-id": letter.id[:MAX_NAME]},
            retry=True,
            retry_policy=_PUBLISH_RETRY,
        )
        return None

    @contextmanager
    def _fetched(self) -> Iterator[list[tuple[Message, DeadLetter]]]:
        """Every dead letter, unacknowledged: whatever the caller does not ack goes back."""
        self.skipped = []
        bound_decompression(self.settings.max_message_size)  # a foreign entry may be a bomb
        with self._connection() as conn:
            channel: Any = conn.channel()
            queue = self.queue(channel)
            try:
                queue.declare()
            except PreconditionFailed as error:  # a `.dead` queue of the other type
                raise queue_mismatch(error) or error from None
            fetched = []
            while (message := queue.get(no_ack=False, accept=["json"])) is not None:
                found = _parse(message)
                if isinstance(found, Skipped):
                    self.skipped.append(found)
                else:
                    fetched.append((message, found))
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
        waits for the replayed outcome instead of the old one. A letter whose body was cut to
        fit the size limit is skipped: it cannot be replayed.
        """
        wanted = None if ids is None else set(ids)
        replayed = []
        with self._fetched() as fetched, self._connection() as conn:
            producer = conn.Producer()
            for message, letter in fetched:
                if wanted is not None and letter.id not in wanted:
                    continue
                if letter.truncated:
                    self.skipped.append(
                        Skipped(printable(letter.id), "its body was cut: not replayable", letter.id)
                    )
                    continue
                if prepare is not None:
                    prepare(letter)
                _republish(producer, letter, self.settings)
                message.ack()  # only once the broker holds the replayed message
                replayed.append(letter)
        return replayed

    def purge(self) -> int:
        """Drop every dead letter; returns how many there were (foreign entries stay)."""
        with self._fetched() as fetched:
            for message, _ in fetched:
                message.ack()
            return len(fetched)


def printable(text: str) -> str:
    """`text` safe for a terminal: control, format and separator characters escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _republish(producer: Any, letter: DeadLetter, settings: Settings) -> None:
    """The letter's message back on its queue, its delivery count started afresh."""
    headers = {k: v for k, v in letter.headers.items() if k not in DELIVERY_COUNT_HEADERS}
    producer.publish(
        letter.raw_body(),
        exchange="",
        routing_key=letter.queue,
        declare=[plain_queue(letter.queue, settings)],
        content_type=letter.content_type or "application/data",
        content_encoding=letter.content_encoding or "binary",
        headers=headers,
        retry=True,
        retry_policy=_PUBLISH_RETRY,
        **letter.properties,
    )


def record_failure(
    task: Any, task_id: str, args: Any, kwargs: Any, exc: BaseException, request: Any = None
) -> None:
    """Dead-letter a task that failed for good (retries exhausted, or none to make).

    The dead letter keeps the task's place in a workflow (the rest of its chain, its chord),
    so its replay resumes the workflow. Only for messages that came from a broker: an eager
    or in-process call has nothing to replay. Runs before the worker acknowledges the
    message, so a crash here redelivers it; a broker that refuses the dead letter is logged
    (`dead_letter.failed`), and the failure stays readable in the result backend.
    """
    request = task.request if request is None else request
    queue = _delivered_to(task, request)
    if queue is None:
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
        queue,
        settings,
        _text_or_none(request.correlation_id),
    )
    try:
        with task.app.producer_or_acquire() as producer:  # the process's pooled connection
            DeadLetterStore(settings).add(letter, producer)
    except Exception as error:  # the failure itself is still stored as the task's result
        log.error("dead_letter.failed", id=task_id, error=redact(f"{error!r}", settings))
    else:
        dead_lettered(task.app, task.name)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _delivered_to(task: Any, request: Any) -> str | None:
    """The queue the failed message came from; None for an eager or in-process call.

    A hard time limit is reported by the worker's main process, where no request is on the
    task's stack: the message came from the task's own route then.
    """
    if request.is_eager:
        return None
    if request.delivery_info:
        routing_key = queue_of(str(request.delivery_info.get("routing_key") or ""))
        return routing_key or str(task.app.conf.task_default_queue)
    if request.id is not None:
        return None  # a request without a broker: nothing to replay
    route = task.app.amqp.router.route({}, task.name)
    return str(getattr(route.get("queue"), "name", None) or task.app.conf.task_default_queue)
