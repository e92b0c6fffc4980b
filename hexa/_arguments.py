"""Checks on a call's arguments, run before anything is published."""

from __future__ import annotations

import datetime
import decimal
import inspect
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from hexa._exceptions import DispatchError

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
) -> None:
    """Raise a `TypeError` naming the task when the call does not fit its signature."""
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{task_name}{signature}: {error}") from None


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


def check_json(task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Raise `DispatchError` naming the first argument that cannot be sent as JSON."""
    named = [(f"argument {i}", v) for i, v in enumerate(args)]
    named += [(f"argument {k!r}", v) for k, v in kwargs.items()]
    for label, value in named:
        problem = _json_problem(value)
        if problem:
            raise DispatchError(
                f"{task_name}: {label} cannot be sent: {problem}; pass plain data "
                "(str, int, float, bool, None, list, dict, datetime, UUID, Decimal), "
                "e.g. an id instead of an object"
            )
