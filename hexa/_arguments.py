"""Checks on a call's arguments, run before anything is published."""

from __future__ import annotations

import datetime
import decimal
import inspect
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from kombu.utils.json import dumps

from hexa._exceptions import DispatchError, did_you_mean
from hexa._settings import DEFAULT_MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE_ENV

_SCALARS = (str, int, float, bool, type(None))
# Types Celery's JSON serializer encodes and decodes itself.
_JSON_LEAVES = (
    *_SCALARS,
    datetime.datetime,
    datetime.date,
    datetime.time,
    uuid.UUID,
    decimal.Decimal,
)


def bind_arguments(
    task_name: str, signature: inspect.Signature, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> inspect.BoundArguments:
    """The call bound to the signature; a `TypeError` naming the task when it does not fit."""
    try:
        return signature.bind(*args, **kwargs)
    except TypeError as error:
        hint = _misnamed(signature, kwargs, str(error))
        raise TypeError(f"{task_name}{readable(signature)}: {error}{hint}") from None


class _Source(str):
    """An annotation kept as a string (`from __future__ import annotations`), shown unquoted."""

    def __repr__(self) -> str:
        return str(self)


def readable(signature: inspect.Signature) -> str:
    """`(invoice_id: int | None = None) -> str`, whether annotations are strings or types."""

    def plain(annotation: Any) -> Any:
        return _Source(annotation) if isinstance(annotation, str) else annotation

    parameters = [p.replace(annotation=plain(p.annotation)) for p in signature.parameters.values()]
    return str(
        signature.replace(
            parameters=parameters, return_annotation=plain(signature.return_annotation)
        )
    )


def _misnamed(signature: inspect.Signature, kwargs: Mapping[str, Any], message: str) -> str:
    """A "did you mean 'invoice_id'?" hint for a keyword the signature does not have."""
    params = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return ""
    unknown = [key for key in kwargs if key not in params]
    if not unknown:
        return ""
    named = "" if repr(unknown[0]) in message else f"; unexpected keyword argument {unknown[0]!r}"
    return named + did_you_mean(unknown[0], params)


def _json_problem(value: Any) -> str | None:
    """Why `value` cannot travel as JSON, or None when it can."""
    if isinstance(value, _JSON_LEAVES):
        return None
    if isinstance(value, list | tuple):
        return next((p for p in map(_json_problem, value) if p), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"dict key {key!r} is not a str"
            problem = _json_problem(item)
            if problem:
                return problem
        return None
    return f"{type(value).__qualname__} is not JSON-serializable"


def _positional_labels(signature: inspect.Signature | None, count: int) -> list[str]:
    """`argument 'invoice_id'` for each positional value; by index past the named ones."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = list(signature.parameters.values()) if signature else []
    names = [p.name for p in params if p.kind in kinds]
    star = next((p.name for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL), None)
    labels = [f"argument {name!r}" for name in names[:count]]
    for index in range(len(labels), count):
        labels.append(f"argument {star}[{index - len(names)}]" if star else f"argument {index}")
    return labels


def check_json(
    task_name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    signature: inspect.Signature | None = None,
) -> None:
    """Raise `DispatchError` naming the first argument that cannot be sent as JSON.

    With the task's `signature`, positional values are named by their parameter.
    """
    named = list(zip(_positional_labels(signature, len(args)), args, strict=True))
    named += [(f"argument {k!r}", v) for k, v in kwargs.items()]
    for label, value in named:
        problem = _json_problem(value)
        if problem:
            raise DispatchError(
                f"{task_name}: {label} cannot be sent: {problem}; pass plain data "
                "(str, int, float, bool, None, list, dict, datetime, UUID, Decimal), "
                "e.g. an id instead of an object"
            )


#: Worst JSON bytes per character of a str: an astral character becomes `\ud83d\ude00`.
_WORST_PER_CHAR = 12
_SCALAR_CEILING = 64  # bytes: more than any float, bool, null, date, time or UUID takes


def _json_ceiling(value: Any) -> int:
    """Bytes `value` can take at most as JSON: counted without encoding anything."""
    kind = type(value)
    if kind is int:
        digits: int = value.bit_length() // 3  # decimal digits, rounded up
        return digits + 2
    if kind is str:
        return _WORST_PER_CHAR * len(value) + 2
    if kind is list or kind is tuple:
        return sum(map(_json_ceiling, value)) + 2 * len(value) + 2
    if kind is dict:
        return (
            sum(map(_json_ceiling, value))
            + sum(map(_json_ceiling, value.values()))
            + (4 * len(value) + 2)
        )
    return _subclass_ceiling(value)


def _subclass_ceiling(value: Any) -> int:
    """The rarer kinds: subclasses of the above (an IntEnum...), floats, decimals, dates."""
    if isinstance(value, str):
        return _json_ceiling(str(value))
    if isinstance(value, list | tuple):
        return _json_ceiling(list(value))
    if isinstance(value, dict):
        return _json_ceiling(dict(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return _json_ceiling(int(value))
    if isinstance(value, decimal.Decimal):
        return len(str(value)) + 2
    return _SCALAR_CEILING


def _json_floor(value: Any) -> int:
    """Bytes `value` takes at least as JSON (every character at least one byte)."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, list | tuple):
        return sum(map(_json_floor, value)) + len(value) + 1
    if isinstance(value, dict):
        return sum(map(_json_floor, value)) + sum(map(_json_floor, value.values())) + len(value)
    return 1


def check_size(task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any], limit: int) -> None:
    """Raise `DispatchError` when the call's JSON would exceed `limit` bytes.

    Counting is cheap; the arguments are encoded only when counting cannot decide.
    """
    if _json_ceiling(args) + _json_ceiling(kwargs) + _SCALAR_CEILING <= limit:
        return
    floor = _json_floor(args) + _json_floor(kwargs)
    if floor > limit:  # refused without encoding hundreds of megabytes first
        raise _too_big(task_name, f"at least {floor:,}", limit)
    size = len(dumps([list(args), dict(kwargs), None]))  # Celery's own JSON encoder
    if size > limit:
        raise _too_big(task_name, f"{size:,}", limit)


def _too_big(task_name: str, size: str, limit: int) -> DispatchError:
    return DispatchError(
        f"{task_name}: the arguments take {size} bytes as JSON, above the {limit:,}-byte "
        f"limit ({MAX_MESSAGE_SIZE_ENV}); RabbitMQ refuses messages above its max_message_size "
        "(128 MiB by default). Store large data elsewhere (a database, object storage) and "
        "send its key"
    )


def max_message_size(app: Any) -> int:
    """The app's `Settings.max_message_size` (a plain Celery app: the default)."""
    settings = getattr(app, "hexa_settings", None)
    return int(getattr(settings, "max_message_size", DEFAULT_MAX_MESSAGE_SIZE))
