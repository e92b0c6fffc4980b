"""The shape of a task message, checked once before Celery reads it.

Celery trusts the fields of a task message. A `timelimit` of `[10, "x"]` reaches a timer in
the worker's main loop and ends the whole process ("Unrecoverable error"); an `eta` it cannot
convert drops the message unrecorded; a callback of the wrong shape fails after the task ran,
outside the task. `check_message` reads every header and body field Celery reads on the way
to the pool, in protocol 2, protocol 1 and the hybrid of both, and raises `MalformedMessage`
naming the first wrong one; the consumer dead-letters the message with that reason.

What Celery already refuses cleanly is left to it (a message that is not a task message, an
unknown task, an undecodable body, a refused content type): its consumer reports those.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs
from celery.canvas import Signature
from celery.utils.time import maybe_iso8601, maybe_make_aware, timezone
from kombu.asynchronous.timer import to_timestamp
from kombu.message import Message

#: How deep callbacks may nest (a chain in a chord in a group...); real canvases stay far below.
MAX_DEPTH = 16
#: Longest task name or id accepted (Celery's ids are 36 characters).
MAX_NAME = 255
_SHOWN = 60  # characters of a wrong value quoted in a reason


class MalformedMessage(ValueError):
    """A task message Celery must not read: the reason names the field and what it holds."""


@attrs.frozen
class Rule:
    """What one field must hold, in words and as a test."""

    expected: str
    valid: Callable[[Any], bool]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + f"... ({len(text)} chars)"


def _text(value: Any) -> bool:
    """A str that UTF-8 can encode: a lone surrogate would fail as a result-store key."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _name(value: Any) -> bool:
    return _text(value) and 0 < len(value) <= MAX_NAME


def _optional(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or test(value)


def _count(value: Any) -> bool:
    """A non-negative int that arithmetic on it cannot blow up (retries, nesting, index)."""
    return type(value) is int and 0 <= value < 2**31


def _seconds(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and 0 <= value < 10**9


def _timelimit(value: Any) -> bool:
    """`[hard, soft]` seconds, each a number or null (Celery unpacks exactly two)."""
    if not value:
        return value is None or isinstance(value, list | tuple)  # an empty one means none
    return isinstance(value, list | tuple) and len(value) == 2 and all(map(_maybe_seconds, value))


_maybe_seconds = _optional(_seconds)


def _when(value: Any) -> bool:
    """An ISO 8601 date Celery can turn into a timer entry, as its strategy will."""
    if not isinstance(value, str | datetime):
        return False
    try:
        parsed = maybe_iso8601(value)
        if parsed is not None:
            to_timestamp(timezone.to_system(maybe_make_aware(parsed)))
    except (ValueError, TypeError, OverflowError, AttributeError):
        return False
    return True


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _str_keys(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(key, str) for key in value)


def _sequence(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _texts(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)


_TEXT_OR_NULL = Rule("text or null", _optional(_text))
_WHEN = Rule("an ISO 8601 date or null", _optional(_when))
_COUNT = Rule("a whole number from 0 or null", _optional(_count))

#: Headers of protocol 2 (and the fields of a protocol-1 body that become them).
HEADER_RULES: dict[str, Rule] = {
    "task": Rule(f"a task name (text, at most {MAX_NAME} characters)", _name),
    "id": Rule(f"a task id (text, at most {MAX_NAME} characters)", _name),
    "lang": _TEXT_OR_NULL,
    "shadow": _TEXT_OR_NULL,
    "root_id": _TEXT_OR_NULL,
    "parent_id": _TEXT_OR_NULL,
    "group": _TEXT_OR_NULL,
    "origin": _TEXT_OR_NULL,
    "argsrepr": _TEXT_OR_NULL,
    "kwargsrepr": _TEXT_OR_NULL,
    "eta": _WHEN,
    "expires": _WHEN,
    "retries": Rule("a whole number from 0", _count),
    "group_index": _COUNT,
    "replaced_task_nesting": _COUNT,
    "timelimit": Rule("[hard, soft] seconds (numbers or null)", _timelimit),
    "ignore_result": Rule("true, false or null", _optional(_bool)),
    "stamped_headers": Rule("a list of header names or null", _optional(_texts)),
    "stamps": Rule("an object or null", _optional(_str_keys)),
}
#: A protocol-1 body: the headers above, plus the call and its callbacks.
BODY_RULES: dict[str, Rule] = {
    **HEADER_RULES,
    "args": Rule("a list", _sequence),
    "kwargs": Rule("an object with text keys", _str_keys),
    "utc": Rule("true, false or null", _optional(_bool)),
    "taskset": _TEXT_OR_NULL,
}
REQUIRED = ("task", "id")


def _fields_problem(where: str, fields: Mapping[str, Any], rules: Mapping[str, Rule]) -> None:
    for name in REQUIRED:
        if name not in fields:
            raise MalformedMessage(f"{where} {name!r} is missing")
    for name, rule in rules.items():
        if name in fields and not rule.valid(fields[name]):
            raise MalformedMessage(
                f"{where} {name!r} must be {rule.expected}, got {_short(fields[name])}"
            )


# -- callbacks, errbacks, chains and chords: Celery signatures as dicts -------------------------

#: Options Celery's `apply_async` acts on, by what they must hold; others must be plain values.
_OPTION_RULES: dict[str, Rule] = {
    **dict.fromkeys(
        (
            "task_id",
            "queue",
            "exchange",
            "routing_key",
            "reply_to",
            "group_id",
            "root_id",
            "parent_id",
            "shadow",
            "serializer",
            "compression",
        ),
        _TEXT_OR_NULL,
    ),
    **{
        key: Rule("seconds or null", _maybe_seconds)
        for key in ("countdown", "time_limit", "soft_time_limit")
    },
    "eta": _WHEN,
    "expires": Rule("seconds, an ISO 8601 date or null", lambda v: _maybe_seconds(v) or _when(v)),
    "priority": Rule("a number from 0 to 255 or null", _optional(lambda v: _count(v) and v < 256)),
    "group_index": _COUNT,
    "chord_size": _COUNT,
    "ignore_result": Rule("true, false or null", _optional(_bool)),
    "retry": Rule("true, false or null", _optional(_bool)),
    "headers": Rule("an object or null", _optional(_str_keys)),
    "retry_policy": Rule("an object or null", _optional(_str_keys)),
    "stamped_headers": Rule("a list of header names or null", _optional(_texts)),
    "stamps": Rule("an object or null", _optional(_str_keys)),
}
#: Options that a message must never set: they are objects or arguments in the worker.
_FORBIDDEN_OPTIONS = frozenset(
    ("producer", "connection", "router", "result_cls", "task_type", "app", "args", "kwargs")
)
#: Options holding signatures: callbacks, errbacks, a chord's body, the rest of a chain.
_SIGNATURE_LINKS = ("link", "link_error", "chord", "chain")
_PLAIN = (str, int, float, bool, type(None))


def _check_option(where: str, key: str, value: Any, depth: int) -> None:
    if key in _SIGNATURE_LINKS:
        if value is not None:
            _check_signatures(f"{where} option {key!r}", value, depth + 1)
        return
    rule = _OPTION_RULES.get(key)
    if key in _FORBIDDEN_OPTIONS or (rule is None and not isinstance(value, _PLAIN)):
        raise MalformedMessage(f"{where} option {key!r} is not accepted: {_short(value)}")
    if rule is not None and not rule.valid(value):
        raise MalformedMessage(f"{where} option {key!r} must be {rule.expected}")


def _check_options(where: str, options: Any, depth: int) -> None:
    if not _str_keys(options):
        raise MalformedMessage(f"{where} 'options' must be an object, got {_short(options)}")
    for key, value in options.items():
        _check_option(where, key, value, depth)


def _check_signature(where: str, value: Any, depth: int) -> None:
    """One signature dict, as `celery.canvas.signature()` will rebuild and send it."""
    if depth > MAX_DEPTH:
        raise MalformedMessage(f"{where} nests deeper than {MAX_DEPTH} levels")
    if not _str_keys(value) or not _name(value.get("task")):
        raise MalformedMessage(f"{where} must be a task signature, got {_short(value)}")
    kind = value.get("subtask_type")
    if kind is not None and kind not in Signature.TYPES:
        raise MalformedMessage(f"{where} has an unknown subtask_type {_short(kind)}")
    if not _sequence(value.get("args", ())) or not _str_keys(value.get("kwargs", {})):
        raise MalformedMessage(f"{where} needs 'args' as a list and 'kwargs' as an object")
    if not isinstance(value.get("immutable", False), bool):
        raise MalformedMessage(f"{where} 'immutable' must be true or false")
    if not _optional(_count)(value.get("chord_size")):
        raise MalformedMessage(f"{where} 'chord_size' must be a whole number or null")
    _check_options(where, value.get("options", {}), depth)
    _check_members(where, kind, value.get("kwargs", {}), depth)


def _check_members(where: str, kind: str | None, kwargs: Mapping[str, Any], depth: int) -> None:
    """The signatures a chain, group, chord or map carries in its kwargs."""
    if kind in ("chain", "group"):
        _check_signatures(f"{where} tasks", kwargs.get("tasks"), depth + 1, single=False)
    elif kind == "chord":
        _check_signatures(f"{where} header", kwargs.get("header"), depth + 1)
        _check_signature(f"{where} body", kwargs.get("body"), depth + 1)
    elif kind in ("chunks", "xmap", "xstarmap"):
        _check_signature(f"{where} task", kwargs.get("task"), depth + 1)
        if not _sequence(kwargs.get("it")):
            raise MalformedMessage(f"{where} 'it' must be a list")


def _check_signatures(where: str, value: Any, depth: int, single: bool = True) -> None:
    """A list of signatures (callbacks, a chain's tasks); `single`: one alone is fine too."""
    if single and isinstance(value, dict):
        return _check_signature(where, value, depth)
    if not isinstance(value, list | tuple):
        raise MalformedMessage(f"{where} must be a list of task signatures, got {_short(value)}")
    for index, item in enumerate(value):
        _check_signature(f"{where}[{index}]", item, depth)
    return None


def _check_optional(where: str, value: Any, many: bool) -> None:
    """Celery iterates callbacks, errbacks and chains, and reads a chord as one signature."""
    if value is None:
        return
    if many:
        _check_signatures(where, value, 0, single=False)
    else:
        _check_signature(where, value, 0)


# -- the message ------------------------------------------------------------------------------

#: Protocol 2's embedded options: True for a list of signatures, False for a single one.
_EMBED = {"callbacks": True, "errbacks": True, "chain": True, "chord": False}


def _check_embed(embed: Any) -> None:
    """Protocol 2's third body item: only the four keys Celery writes there."""
    if embed is None:
        return
    if not _str_keys(embed) or set(embed) - set(_EMBED):
        raise MalformedMessage(
            f"body's third item must be an object with keys {', '.join(_EMBED)}, "
            f"got {_short(embed)}"
        )
    for key, many in _EMBED.items():
        _check_optional(f"body {key}", embed.get(key), many)


def _check_v2_body(payload: Any) -> None:
    if not (isinstance(payload, list | tuple) and len(payload) == 3):
        raise MalformedMessage(f"body must be [args, kwargs, embed], got {_short(payload)}")
    args, kwargs, embed = payload
    if not _sequence(args):
        raise MalformedMessage(f"body args must be a list, got {_short(args)}")
    if not _str_keys(kwargs):
        raise MalformedMessage(
            f"body kwargs must be an object with text keys, got {_short(kwargs)}"
        )
    _check_embed(embed)


def _check_v1_body(body: Mapping[str, Any]) -> None:
    """Protocol 1 (or the body of a hybrid message): the body is the request."""
    _fields_problem("body field", body, BODY_RULES)
    for key in ("callbacks", "errbacks", "chord"):
        _check_optional(f"body {key}", body.get(key), _EMBED[key])


def _payload(message: Message) -> tuple[bool, Any]:
    """(True, decoded body), or (False, None) when Celery's own decoding will refuse it."""
    try:
        return True, message.decode()  # kombu caches it: Celery does not decode twice
    except Exception:
        return False, None


def check_message(message: Message) -> None:
    """Raise `MalformedMessage` naming the first field Celery must not read; None when sound."""
    headers = message.headers
    if not isinstance(headers, Mapping) or message.errors:
        return  # not a task message, or undecodable: Celery's consumer reports it
    decoded, payload = _payload(message)
    if not decoded:
        return
    if "task" not in headers:  # protocol 1, or not a task message at all
        if isinstance(payload, dict) and "task" in payload:
            _check_v1_body(payload)
        return
    if isinstance(payload, dict) and "args" in payload:  # a hybrid: the body then the headers
        call = {"args": payload["args"], "kwargs": payload.get("kwargs", {})}
        _check_v1_body({**payload, **headers, **call})
        return
    _fields_problem("header", headers, HEADER_RULES)
    _check_v2_body(payload)


def identity(message: Message) -> tuple[str | None, str | None]:
    """(task name, task id) from the headers, else from a protocol-1 body, as Celery reads them."""
    fields: Any = message.headers if isinstance(message.headers, Mapping) else {}
    if "task" not in fields and not message.errors:
        decoded, payload = _payload(message)
        if decoded and isinstance(payload, dict):
            fields = payload
    name, task_id = fields.get("task"), fields.get("id")
    return (name if _name(name) else None), (task_id if _name(task_id) else None)
