"""A task message as AMQP frames, from a template encoded once per task and destination.

py-amqp encodes every property and each of Celery's 19 headers for every message: with
Celery's message building, that was most of a confirmed publish's client CPU. For one task,
queue and result setting, all but a handful of those values never change. A `Template`
holds them already encoded; a message then costs encoding its task id, root and parent ids,
the arguments' repr, its origin and reply-to, and the JSON body. The bytes are the ones
Celery's `create_task_message` plus py-amqp would have written (tests/unit/test_frames.py
compares them), so any Celery worker receives the same message.
"""

from __future__ import annotations

from struct import pack
from typing import Any

import attrs
from amqp.serialization import dumps as amqp_dumps
from kombu import Queue

_BASIC = 60
_PUBLISH = 40
_CONTENT_TYPE = b"application/json"
_CONTENT_ENCODING = b"utf-8"
#: Property flags: content type, encoding, headers, delivery mode, correlation id, reply-to.
_FLAGS = pack(">H", 0x8000 | 0x4000 | 0x2000 | 0x1000 | 0x0400 | 0x0200)


def _items(headers: dict[str, Any]) -> bytes:
    """py-amqp's encoding of these field-table items, without the table's length prefix."""
    encoded: bytes = amqp_dumps("F", (headers,))
    return encoded[4:]


def _shortstr(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 255:
        raise ValueError(f"{text[:40]!r}...: longer than an AMQP short string (255 bytes)")
    return pack("B", len(raw)) + raw


def _string_item(key: bytes, value: str) -> bytes:
    raw = value.encode("utf-8", "surrogatepass")
    return key + pack(">I", len(raw)) + raw


@attrs.frozen
class Template:
    """Everything of one task's messages to one destination that is the same every time."""

    name: str
    exchange: str
    routing_key: str
    declare: Queue | None
    method: bytes  # the Basic.Publish method frame's payload
    head: bytes  # encoded header items before the task id
    middle: bytes  # between the id and the root id
    tail: bytes  # after the origin
    delivery_mode: int

    @classmethod
    def make(
        cls,
        name: str,
        exchange: str,
        routing_key: str,
        declare: Queue | None,
        delivery_mode: int,
        ignore_result: bool,
    ) -> Template:
        """Encode the constant parts, in the order of Celery's `as_task_v2` headers."""
        method = pack(">HH", _BASIC, _PUBLISH) + amqp_dumps(
            "Bssbb", (0, exchange, routing_key, False, False)
        )
        middle: dict[str, Any] = {
            "shadow": None, "eta": None, "expires": None, "group": None, "group_index": None,
            "retries": 0, "timelimit": [None, None],
        }  # fmt: skip
        tail: dict[str, Any] = {
            "ignore_result": ignore_result, "replaced_task_nesting": 0,
            "stamped_headers": None, "stamps": {},
        }  # fmt: skip
        return cls(
            name, exchange, routing_key, declare, method,
            _items({"lang": "py", "task": name}), _items(middle), _items(tail), delivery_mode,
        )  # fmt: skip

    def message(
        self,
        task_id: str,
        root_id: str,
        parent_id: str | None,
        argsrepr: str,
        kwargsrepr: str,
        origin: str,
        reply_to: str,
        body: bytes,
    ) -> Framed:
        """One message: its header frame's payload (properties included) and its body."""
        table = b"".join(
            (
                self.head,
                _string_item(b"\x02idS", task_id),
                self.middle,
                _string_item(b"\x07root_idS", root_id),
                b"\x09parent_idV"
                if parent_id is None
                else _string_item(b"\x09parent_idS", parent_id),
                _string_item(b"\x08argsreprS", argsrepr),
                _string_item(b"\x0akwargsreprS", kwargsrepr),
                _string_item(b"\x06originS", origin),
                self.tail,
            )
        )
        header = b"".join(
            (
                pack(">HHQ", _BASIC, 0, len(body)),
                _FLAGS,
                b"\x10",
                _CONTENT_TYPE,
                b"\x05",
                _CONTENT_ENCODING,
                pack(">I", len(table)),
                table,
                pack("B", self.delivery_mode),
                _shortstr(task_id),
                _shortstr(reply_to),
            )
        )
        return Framed(self.name, task_id, self.method, header, body, self.declare)


@attrs.frozen
class Framed:
    """One task message as frame payloads, ready for `ConfirmChannel.publish_frames` (the
    channel number and frame size are the connection's, known only when it is written)."""

    name: str
    task_id: str
    method: bytes
    header: bytes
    body: bytes
    declare: Queue | None


def frames(channel_id: int, frame_max: int, method: bytes, header: bytes, body: bytes) -> bytes:
    """The method, header and body frames, the body split to the connection's frame size."""
    out = [
        pack(">BHI", 1, channel_id, len(method)), method, b"\xce",
        pack(">BHI", 2, channel_id, len(header)), header, b"\xce",
    ]  # fmt: skip
    chunk = frame_max - 8
    for start in range(0, len(body), chunk):
        part = body[start : start + chunk]
        out += (pack(">BHI", 3, channel_id, len(part)), part, b"\xce")
    return b"".join(out)
