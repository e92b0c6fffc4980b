"""Delivery options: validated when set, refused when unknown, never a retry policy."""

from __future__ import annotations

import datetime

import attrs
import pytest

from hexa import DispatchError, UnknownOptionError
from hexa._options import SEND_TASK_OPTIONS, WITH_OPTIONS, SendOptions, refuse_unknown_options

WHEN = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


class TestSendOptions:
    def test_only_the_options_that_are_set_reach_celery(self) -> None:
        options = SendOptions(countdown=5, priority=0, queue="q")
        assert options.for_celery() == {"countdown": 5, "priority": 0, "queue": "q"}
        assert SendOptions(eta=WHEN, expires=WHEN).for_celery() == {"eta": WHEN, "expires": WHEN}
        assert SendOptions().for_celery() == {}

    def test_options_are_frozen(self) -> None:
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            SendOptions().countdown = 3  # type: ignore[misc]

    @pytest.mark.parametrize("priority", [0, 9])
    def test_priorities_from_0_to_9_are_accepted(self, priority: int) -> None:
        assert SendOptions(priority=priority).priority == priority

    @pytest.mark.parametrize("priority", [-1, 10, True, 2.5])
    def test_other_priorities_are_refused(self, priority: int) -> None:
        with pytest.raises(DispatchError, match=f"priority={priority!r}: must be a whole number"):
            SendOptions(priority=priority)

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"countdown": -1}, "countdown=-1: must be >= 0 seconds"),
            ({"countdown": "5"}, "countdown='5': give seconds as a number"),
            ({"expires": -0.5}, "expires=-0.5: must be >= 0 seconds"),
            ({"eta": 5}, "eta=5: give a datetime, or countdown= in seconds"),
            ({"queue": ""}, "queue='': name a queue"),
            ({"countdown": 1, "eta": WHEN}, "countdown= and eta= both set: give one of them"),
        ],
    )
    def test_values_that_cannot_work_are_refused(
        self, options: dict[str, object], message: str
    ) -> None:
        with pytest.raises(DispatchError) as caught:
            SendOptions(**options)  # type: ignore[arg-type]
        assert str(caught.value).startswith(message)


class TestRefuseUnknownOptions:
    def test_no_options_is_fine(self) -> None:
        refuse_unknown_options("m.t", {})

    @pytest.mark.parametrize("word", ["retries", "retry_policy", "max_retries"])
    def test_retry_words_point_to_the_declaration(self, word: str) -> None:
        with pytest.raises(DispatchError) as caught:
            refuse_unknown_options("m.t", {word: 3})
        assert str(caught.value) == (
            f"send_task('m.t') got {word}=; retry policy is declared on the task "
            "(@module_task(retry=Backoff(...)) or the 'config' of its *_tasks entry), not per "
            "call; valid options: args, kwargs, countdown, eta, expires, priority, queue"
        )

    @pytest.mark.parametrize("method", ["send_task", "with_options"])
    def test_an_unknown_option_is_a_type_error_as_for_any_unexpected_keyword(
        self, method: str
    ) -> None:
        with pytest.raises(TypeError, match=r"got retries=; retry policy is declared") as caught:
            refuse_unknown_options("m.t", {"retries": 3}, method)
        assert isinstance(caught.value, UnknownOptionError)
        assert isinstance(caught.value, DispatchError)  # refused before publishing, as before

    def test_other_unknown_options_list_the_valid_ones_only(self) -> None:
        with pytest.raises(DispatchError) as caught:
            refuse_unknown_options("m.t", {"delay": 1, "link": None})
        assert str(caught.value) == (
            "send_task('m.t') got delay=, link=; valid options: "
            "args, kwargs, countdown, eta, expires, priority, queue"
        )

    def test_with_options_lists_delivery_options_only(self) -> None:
        with pytest.raises(DispatchError, match=r"valid options: countdown, eta, expires, pri"):
            refuse_unknown_options("m.t", {"retries": 1}, "with_options")
        assert SEND_TASK_OPTIONS[2:] == WITH_OPTIONS
