"""Checks on a call's arguments, run before anything is published."""

from __future__ import annotations

import datetime
import decimal
import inspect
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from hexa._exceptions import DispatchError, did_you_mean

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
