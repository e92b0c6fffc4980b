"""Reading `*_tasks` dicts, emitted or hand-written, into task definitions."""

from __future__ import annotations

import inspect

import pytest

from hexa import FixedDelay, InvalidTaskConfigError, module_task
from hexa._definitions import definitions, module_name, near_misses


def add(a: int, b: int) -> int:
    return a + b


async def fetch(url: str) -> str:
    return url


class TestDefinitions:
    def test_name_is_service_without_suffix_dot_key(self) -> None:
        (found,) = definitions({"invoicing_tasks": {"emit_invoice": add}})
        assert found.name == "invoicing.emit_invoice"

    def test_only_the_suffix_is_removed(self) -> None:
        # str.replace would turn "my_tasks_tasks" into "my"
        assert module_name("my_tasks_tasks") == "my_tasks"
        assert module_name("batch_tasks_queue_tasks") == "batch_tasks_queue"

    def test_simple_and_advanced_formats(self) -> None:
        simple, advanced = definitions(
            {
                "m_tasks": {
                    "add": add,
                    "fetch": {"task": fetch, "config": {"max_retries": 3, "queue": "io"}},
                }
            }
        )
        assert simple.func is add
        assert not simple.is_async
        assert simple.options == {}
        assert advanced.is_async
        assert advanced.options == {"max_retries": 3}
        assert advanced.queue == "io"  # a hexa option, never a task attribute

    def test_decorated_task_in_a_hand_written_dict(self) -> None:
        task = module_task(module="m")(add)
        (found,) = definitions({"m_tasks": {"add": task}})
        assert found.func is add
        assert found.name == "m.add"

    def test_decorated_task_in_the_simple_format_keeps_its_declaration(self) -> None:
        def bound(task: object, n: int) -> int:
            return n

        declared = module_task(module="m", bind=True, retry=FixedDelay(delay=5), queue="io")(bound)
        (found,) = definitions({"m_tasks": {"b": declared}})
        assert found.options["bind"] is True
        assert found.options["default_retry_delay"] == 5
        assert found.queue == "io"
        assert list(found.signature.parameters) == ["n"]

    def test_the_dicts_own_config_wins_over_the_declaration(self) -> None:
        declared = module_task(module="m", queue="io")(add)
        (found,) = definitions({"m_tasks": {"add": {"task": declared, "config": {"queue": "x"}}}})
        assert found.queue == "x"

    def test_bound_task_signature_drops_the_task_parameter(self) -> None:
        def bound(self: object, n: int) -> int:
            return n

        (found,) = definitions({"m_tasks": {"b": {"task": bound, "config": {"bind": True}}}})
        assert list(found.signature.parameters) == ["n"]
        assert list(inspect.signature(bound).parameters) == ["self", "n"]

    def test_other_services_are_not_tasks(self) -> None:
        assert definitions({"purchase_invoice_service": object, "m_tasks": {}}) == []

    def test_unknown_config_option_lists_valid_ones(self) -> None:
        with pytest.raises(InvalidTaskConfigError, match=r"unknown option\(s\) \['retries'\]"):
            definitions({"m_tasks": {"add": {"task": add, "config": {"retries": 3}}}})

    def test_bad_advanced_format_names_the_shape(self) -> None:
        with pytest.raises(InvalidTaskConfigError, match="'task': function"):
            definitions({"m_tasks": {"add": {"func": add}}})

    def test_non_callable_entry_is_refused(self) -> None:
        with pytest.raises(InvalidTaskConfigError, match="not a function"):
            definitions({"m_tasks": {"add": "add"}})


class TestNearMisses:
    def test_singular_suffix_is_reported_with_the_fix(self) -> None:
        (note,) = near_misses({"invoicing_task": {"emit_invoice": add}})
        assert "'invoicing_task'" in note
        assert "rename it to 'invoicing_tasks'" in note

    def test_tasks_service_that_is_not_a_dict(self) -> None:
        (note,) = near_misses({"invoicing_tasks": [add]})
        assert "not a dict" in note

    def test_regular_services_are_not_near_misses(self) -> None:
        assert near_misses({"task_repository": object(), "invoicing_tasks": {"a": add}}) == []
