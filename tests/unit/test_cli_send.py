"""`hexa send`'s argument parsing: JSON when it parses, plain strings otherwise."""

from __future__ import annotations

import pytest

from hexa._cli import _parse_arg, _parse_kwargs, parser


class TestSendArguments:
    @pytest.mark.parametrize(
        ("text", "value"),
        [("123", 123), ("[1, 2]", [1, 2]), ("null", None), ("hello", "hello"), ("1.5", 1.5)],
    )
    def test_positional_arguments_are_json_when_they_parse(self, text: str, value: object) -> None:
        assert _parse_arg(text) == value

    def test_kwargs_must_be_a_json_object(self) -> None:
        assert _parse_kwargs('{"user_id": 1}') == {"user_id": 1}
        assert _parse_kwargs(None) == {}
        for bad in ("[1]", "{oops"):
            with pytest.raises(ValueError, match="give a JSON object"):
                _parse_kwargs(bad)

    def test_stubs_defaults_to_hexa_stubs_py(self) -> None:
        args = parser().parse_args(["stubs"])
        assert (args.out, args.check) == ("hexa_stubs.py", False)
