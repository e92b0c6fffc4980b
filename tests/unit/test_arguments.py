"""Argument checks run before publishing: the signature, then JSON."""

from __future__ import annotations

import datetime
import decimal
import inspect
import uuid
from typing import Any

import pytest
from kombu.utils import json

from hexa import DispatchError
from hexa._arguments import bind_arguments, check_json, readable


def emit(invoice_id: int, note: str = "", *extra: int, urgent: bool = False) -> str:
    return ""


def anything(**options: Any) -> None:
    pass


EMIT = inspect.signature(emit)


class TestBindArguments:
    def test_a_call_that_fits_is_bound_to_the_parameters(self) -> None:
        bound = bind_arguments("m.emit", EMIT, [1, "n", 2, 3], {"urgent": True})
        assert bound.arguments == {"invoice_id": 1, "note": "n", "extra": (2, 3), "urgent": True}

    def test_a_missing_argument_names_the_task_and_its_signature(self) -> None:
        with pytest.raises(TypeError) as caught:
            bind_arguments("m.emit", EMIT, [], {})
        assert str(caught.value) == (
            "m.emit(invoice_id: int, note: str = '', *extra: int, urgent: bool = False) -> str: "
            "missing a required argument: 'invoice_id'"
        )

    def test_a_misnamed_keyword_gets_the_closest_parameter(self) -> None:
        with pytest.raises(TypeError, match="'urgnt'; did you mean 'urgent'"):
            bind_arguments("m.emit", EMIT, [1], {"urgnt": True})

    def test_a_misnamed_required_keyword_is_named_next_to_the_missing_one(self) -> None:
        with pytest.raises(TypeError) as caught:
            bind_arguments("m.emit", EMIT, [], {"invoice": 1})
        assert str(caught.value).endswith(
            "missing a required argument: 'invoice_id'; unexpected keyword argument 'invoice'; "
            "did you mean 'invoice_id'?"
        )

    def test_no_hint_when_the_function_takes_any_keyword(self) -> None:
        bind_arguments("m.any", inspect.signature(anything), [], {"whatever": 1})
        with pytest.raises(TypeError) as caught:
            bind_arguments("m.any", inspect.signature(anything), [1], {"whatevr": 1})
        assert "did you mean" not in str(caught.value)

    def test_string_annotations_are_shown_unquoted(self) -> None:
        signature = inspect.Signature(
            [inspect.Parameter("a", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="int")],
            return_annotation="str | None",
        )
        assert readable(signature) == "(a: int) -> str | None"


class TestCheckJson:
    def test_plain_data_and_the_types_celery_encodes_pass_and_travel(self) -> None:
        value = {
            "list": [1, 2.5, "x", None, True],
            "nested": {"when": datetime.datetime(2026, 1, 1), "day": datetime.date(2026, 1, 1)},
            "id": uuid.UUID(int=7),
            "amount": decimal.Decimal("1.5"),
            "tuple": (1, 2),
        }
        check_json("m.emit", [value], {"note": "x"}, EMIT)  # accepted: nothing raised ...
        travelled = json.loads(json.dumps(value))  # ... and Celery's serializer carries it
        assert travelled["nested"]["when"] == datetime.datetime(2026, 1, 1)
        assert (travelled["id"], travelled["tuple"]) == (uuid.UUID(int=7), [1, 2])
        assert travelled["amount"] in (1.5, "1.5", decimal.Decimal("1.5"))

    def test_a_positional_value_is_named_by_its_parameter(self) -> None:
        with pytest.raises(DispatchError) as caught:
            check_json("m.emit", [1, object()], {}, EMIT)
        assert str(caught.value).startswith(
            "m.emit: argument 'note' cannot be sent: object is not JSON-serializable; "
            "pass plain data"
        )

    def test_values_past_the_named_parameters_are_named_by_index(self) -> None:
        with pytest.raises(DispatchError, match=r"argument extra\[1\] cannot be sent: set"):
            check_json("m.emit", [1, "n", 2, {3}], {}, EMIT)

    def test_a_keyword_value_is_named(self) -> None:
        with pytest.raises(DispatchError, match="argument 'urgent' cannot be sent: bytes"):
            check_json("m.emit", [1], {"urgent": b"yes"}, EMIT)

    def test_a_dict_with_a_non_string_key_is_refused(self) -> None:
        with pytest.raises(DispatchError, match="dict key 1 is not a str"):
            check_json("m.emit", [{"a": {1: "x"}}], {}, EMIT)

    def test_without_a_signature_positions_are_numbered(self) -> None:
        with pytest.raises(DispatchError, match="argument 0 cannot be sent"):
            check_json("m.emit", [object()], {})
